"""What travels on the wire: batch codecs, batch frame headers and control messages."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from typing import Any

import orjson
import pytest

from datablox import control, frames
from datablox.codec import DEFAULT_CODEC, codec_for_wire, codec_names, get_codec
from datablox.errors import CodecError, ProtocolError

RECORDS: list[dict[str, Any]] = [
    {"id": 0, "key": "k0", "value": 0.123456, "ts": 1700000000},
    {"nested": {"a": {"b": [1, 2, {"c": None}]}, "empty": {}}, "list": [[], [[]], [1, "x"]]},
    {"text": "ümlaut ☃ 日本 𝄞 emoji 🚀", "quote": "\"'\\", "control": "tab\tnl\nnul\x00"},
    {"floats": [0.1, -2.5, 1e300, 5e-324, -0.0, 3.0], "t": True, "f": False, "n": None},
    {"big": 2**63 - 1, "small": -(2**63), "u64": 2**64 - 1, "zero": 0},
    {"": "empty key", "ключ": "unicode key"},
    {},
]


@pytest.mark.parametrize("name", codec_names())
def test_every_codec_round_trips_typical_records(name: str) -> None:
    codec = get_codec(name)
    payload = codec.encode(RECORDS)
    assert isinstance(payload, bytes)
    back = codec.decode(payload)
    assert back == RECORDS
    # 1 and 1.0, True and 1 compare equal in Python; the types must survive too
    assert [type(v) for v in back[3]["floats"]] == [float] * 6
    assert type(back[3]["t"]) is bool and type(back[4]["zero"]) is int


@pytest.mark.parametrize("name", codec_names())
def test_every_codec_round_trips_empty_and_large_batches(name: str) -> None:
    codec = get_codec(name)
    assert codec.decode(codec.encode([])) == []
    batch = [{"id": i, "key": f"k{i % 7}", "value": i / 7} for i in range(5000)]
    assert codec.decode(codec.encode(batch)) == batch


@pytest.mark.parametrize("name", codec_names())
def test_codecs_decode_each_others_records_alike(name: str) -> None:
    """A receiver decodes by the header's codec id, so every codec must give the same records."""
    reference = get_codec(DEFAULT_CODEC)
    codec = get_codec(name)
    assert codec.decode(codec.encode(RECORDS)) == reference.decode(reference.encode(RECORDS))


@pytest.mark.parametrize("name", codec_names())
def test_an_unencodable_record_raises_what_the_links_report(name: str) -> None:
    """datablox/runtime/links.py turns a TypeError or ValueError from ``encode`` into a
    CodecError naming the connection and the codec; anything else escapes as a traceback."""
    codec = get_codec(name)
    with pytest.raises((TypeError, ValueError)):
        codec.encode([{"obj": object()}])
    with pytest.raises((TypeError, ValueError)):
        codec.encode([{"set": {1, 2}}])
    # beyond 64 bits: a codec either carries the integer or refuses it the same way
    record = {"n": 2**70, "m": -(2**70)}
    try:
        payload = codec.encode([record])
    except (TypeError, ValueError):
        return
    assert codec.decode(payload) == [record]


def test_orjson_gives_the_bytes_of_its_rule_whether_or_not_a_batch_has_other_keys() -> None:
    """The orjson codec encodes without OPT_NON_STR_KEYS first (it is about 50% slower)
    and falls back to it for a batch with a non-string key: every batch gets the bytes
    of the full option set, and what it refuses is still refused."""
    codec = get_codec("orjson")
    full = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    batches = [
        [{"id": 1, "key": "k1", "nested": {"a": [1, 2.5, None]}}],
        [{"id": 1}, {1: "a", "b": {2: True}}],  # converted: the keys become strings
        [{"t": (1, 2), "nan": float("nan")}],
    ]
    for batch in batches:
        assert codec.encode(batch) == orjson.dumps(batch, option=full)
    assert codec.decode(codec.encode(batches[1])) == [{"id": 1}, {"1": "a", "b": {"2": True}}]
    for refused in ([{(1, 2): "tuple key"}], [{1: {3, 4}}]):
        with pytest.raises(TypeError):
            codec.encode(refused)


def test_codec_names_and_wire_ids() -> None:
    assert codec_names() == ["orjson", "ujson", "msgpack"]
    ids = {name: get_codec(name).wire_id for name in codec_names()}
    assert ids == {"orjson": 1, "ujson": 2, "msgpack": 3}
    for name, wire_id in ids.items():
        assert codec_for_wire(wire_id) is get_codec(name)
        assert get_codec(name).name == name
        # one byte in the batch header
        assert 0 <= wire_id <= 255


@pytest.mark.parametrize("wire_id", [0, 4, 255])
def test_an_unknown_wire_id_is_a_codec_error(wire_id: int) -> None:
    with pytest.raises(CodecError) as info:
        codec_for_wire(wire_id)
    assert info.value.message == f"batch names unknown codec id {wire_id}"


def test_an_unknown_codec_name_is_a_codec_error_with_a_hint() -> None:
    with pytest.raises(CodecError) as info:
        get_codec("jsonn")
    assert info.value.message == "unknown codec 'jsonn'"
    assert info.value.hint == "choose one of orjson, ujson, msgpack"
    assert str(info.value) == "unknown codec 'jsonn'\n  hint: choose one of orjson, ujson, msgpack"


def test_the_default_codec_and_its_environment_override() -> None:
    script = "from datablox.codec import get_codec; print(get_codec().name)"
    env = {k: v for k, v in os.environ.items() if k != "DATABLOX_CODEC"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out == DEFAULT_CODEC
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "DATABLOX_CODEC": "msgpack"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out == "msgpack"


# ---- frames ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "codec", "sender", "connection", "seq", "count"),
    [
        (frames.DATA, 1, 0, 0, 0, 0),
        (frames.DATA, 3, 7, 12, 99, 256),
        (frames.EOS, 2, 5, 3, 1234, 1_000_000),
        (frames.DATA, 255, 2**32 - 1, 2**32 - 1, 2**64 - 1, 2**32 - 1),
    ],
)
def test_headers_round_trip(
    kind: int, codec: int, sender: int, connection: int, seq: int, count: int
) -> None:
    data = frames.pack_header(kind, codec, sender, connection, seq, count)
    assert len(data) == frames.HEADER_SIZE == 24
    header = frames.unpack_header(data)
    assert header == frames.Header(kind, codec, sender, connection, seq, count)
    assert (header.kind, header.codec, header.sender) == (kind, codec, sender)
    assert (header.connection, header.seq, header.records) == (connection, seq, count)


def test_the_header_layout_is_network_order() -> None:
    data = frames.pack_header(frames.EOS, 3, 0x01020304, 0x0A0B0C0D, 0x1122334455667788, 42)
    assert data == (
        bytes([frames.VERSION, frames.EOS, 3, 0])
        + bytes([1, 2, 3, 4])
        + bytes([0x0A, 0x0B, 0x0C, 0x0D])
        + bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
        + (42).to_bytes(4, "big")
    )


@pytest.mark.parametrize("size", [0, 1, 23, 25, 48])
def test_a_header_of_the_wrong_size_is_a_protocol_error(size: int) -> None:
    with pytest.raises(ProtocolError) as info:
        frames.unpack_header(b"\x01" * size)
    assert info.value.message == f"batch header has {size} bytes, expected 24"


@pytest.mark.parametrize("version", [0, 2, 255])
def test_a_header_of_another_version_is_a_protocol_error(version: int) -> None:
    data = bytearray(frames.pack_header(frames.DATA, 1, 1, 1, 1, 1))
    data[0] = version
    with pytest.raises(ProtocolError) as info:
        frames.unpack_header(bytes(data))
    assert info.value.message == f"batch header version {version}, this datablox speaks 1"


@pytest.mark.parametrize("kind", [4, 5, 255])
def test_a_header_of_an_unknown_kind_is_a_protocol_error(kind: int) -> None:
    data = struct.pack("!BBBBIIQI", frames.VERSION, kind, 1, 0, 1, 1, 1, 1)
    with pytest.raises(ProtocolError) as info:
        frames.unpack_header(data)
    assert info.value.message == f"batch header has unknown kind {kind}"


# ---- control messages --------------------------------------------------------
@pytest.mark.parametrize(
    "msg",
    [
        {"op": "go"},
        {"op": "wire", "endpoints": {"0": "tcp://127.0.0.1:5555"}, "ended": [1, 2]},
        {"op": "log", "element": "g/f", "message": "ümlaut ☃", "n": None, "x": 1.5, "ok": True},
    ],
)
def test_control_messages_round_trip(msg: dict[str, Any]) -> None:
    data = control.encode(msg)
    assert isinstance(data, bytes)
    assert control.decode(data) == msg


def test_encoding_a_message_without_op_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as info:
        control.encode({"process": "p0"})
    assert info.value.message == "control message without 'op': {'process': 'p0'}"


@pytest.mark.parametrize("data", [b"", b"not json", b'{"op": ', b"\xff\xfe"])
def test_decoding_what_is_not_json_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        control.decode(data)
    assert info.value.message.startswith("control message is not JSON: ")


@pytest.mark.parametrize(
    "value", [[], ["op", "go"], "go", 3, None, {}, {"op": 1}, {"op": None}, {"kind": "go"}]
)
def test_decoding_what_is_not_a_dict_with_a_string_op_is_a_protocol_error(value: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        control.decode(orjson.dumps(value))
    assert info.value.message == f"control message without a string 'op': {value!r}"


def test_the_dispatcher_calls_the_handler_of_the_op_with_extra_arguments() -> None:
    calls: list[tuple[str, Any]] = []

    def on_go(msg: dict[str, Any], sender: str) -> str:
        calls.append(("go", sender))
        return "went"

    def on_stop(msg: dict[str, Any], sender: str) -> None:
        calls.append(("stop", msg["why"]))

    dispatcher = control.Dispatcher({"go": on_go, "stop": on_stop}, "process p0")
    assert dispatcher.dispatch({"op": "go"}, "master") == "went"
    assert dispatcher.dispatch({"op": "stop", "why": "ctrl-c"}, "master") is None
    assert calls == [("go", "master"), ("stop", "ctrl-c")]


def test_the_dispatcher_reports_an_unknown_op_with_the_known_ones() -> None:
    dispatcher = control.Dispatcher(
        {"stop": lambda m: None, "go": lambda m: None, "wire": lambda m: None}, "care-taker 'local'"
    )
    with pytest.raises(ProtocolError) as info:
        dispatcher.dispatch({"op": "launch"})
    assert info.value.message == "care-taker 'local' got unknown control op 'launch'"
    assert info.value.hint == "known ops: go, stop, wire"
