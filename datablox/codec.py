"""Batch codecs: a list of records to bytes and back.

Each batch header names the codec that encoded its payload, so a receiver can
decode batches from senders that use different codecs. The default is the
fastest codec measured by ``python -m benchmarks`` on this kind of machine
(see the README's codec table); ``DATABLOX_CODEC`` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datablox.errors import CodecError


@dataclass(frozen=True)
class Codec:
    """A named pair of batch encode/decode functions with a one-byte wire id."""

    name: str
    wire_id: int
    encode: Callable[[list[Any]], bytes]
    decode: Callable[[bytes], list[Any]]
    #: what the codec carries as it is, converts, and refuses (docs/records.md)
    rule: str


ORJSON_RULE = (
    "orjson carries maps, lists, strings, integers within 64 bits, floats, booleans and "
    "null; it converts tuples to lists, NaN and infinities to null, datetimes, dates, times "
    "and UUIDs to strings, enums to their values, dataclasses to maps and non-string map "
    "keys to strings; it refuses bytes, sets, integers beyond 64 bits and other objects"
)
UJSON_RULE = (
    "ujson carries maps, lists, strings, integers of any size, floats (NaN and infinities "
    "too), booleans and null; it converts tuples to lists and non-string map keys to "
    "strings; it refuses bytes, sets, datetimes, UUIDs and other objects"
)
MSGPACK_RULE = (
    "msgpack carries maps (with any scalar keys), lists, strings, bytes, integers within "
    "64 bits, floats (NaN and infinities too), booleans and null; it converts tuples to "
    "lists; it refuses sets, datetimes, integers beyond 64 bits and other objects"
)


def _orjson() -> Codec:
    import orjson

    fast = orjson.OPT_SERIALIZE_NUMPY
    opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def encode(records: list[Any]) -> bytes:
        # OPT_NON_STR_KEYS makes orjson about 50% slower on every batch. Without it,
        # orjson refuses a non-string key, and gives the same bytes for string keys:
        # so the option is used only for a batch that has one (or that it refuses).
        try:
            return orjson.dumps(records, option=fast)
        except orjson.JSONEncodeError:
            return orjson.dumps(records, option=opts)

    return Codec("orjson", 1, encode, orjson.loads, ORJSON_RULE)


def _ujson() -> Codec:
    import ujson

    def encode(records: list[Any]) -> bytes:
        return ujson.dumps(records, ensure_ascii=False, reject_bytes=True).encode("utf-8")

    return Codec("ujson", 2, encode, ujson.loads, UJSON_RULE)


def _msgpack() -> Codec:
    import msgpack

    packer_opts = {"use_bin_type": True}

    def encode(records: list[Any]) -> bytes:
        try:
            return msgpack.packb(records, **packer_opts)  # type: ignore[no-any-return]
        except OverflowError as exc:
            # the same kind of refusal as the JSON codecs give for such integers
            raise ValueError(f"integer out of msgpack's 64-bit range: {exc}") from None

    def decode(payload: bytes) -> list[Any]:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)  # type: ignore[no-any-return]

    return Codec("msgpack", 3, encode, decode, MSGPACK_RULE)


_FACTORIES: dict[str, Callable[[], Codec]] = {
    "orjson": _orjson,
    "ujson": _ujson,
    "msgpack": _msgpack,
}
_WIRE_NAMES = {1: "orjson", 2: "ujson", 3: "msgpack"}
_CACHE: dict[str, Codec] = {}

#: Measured default (see module docstring).
DEFAULT_CODEC = "orjson"


def codec_names() -> list[str]:
    """Names of all known codecs."""
    return list(_FACTORIES)


def get_codec(name: str | None = None) -> Codec:
    """The codec called ``name`` (default: ``$DATABLOX_CODEC`` or :data:`DEFAULT_CODEC`)."""
    from_env = not name and bool(os.environ.get("DATABLOX_CODEC"))
    name = (name or os.environ.get("DATABLOX_CODEC") or DEFAULT_CODEC).strip().lower()
    codec = _CACHE.get(name)
    if codec is None:
        # a user who set the variable long ago must be told where the name came from
        origin = " (from the environment variable DATABLOX_CODEC)" if from_env else ""
        factory = _FACTORIES.get(name)
        if factory is None:
            hint = f"choose one of {', '.join(_FACTORIES)}"
            if name == "json":
                hint += " (orjson and ujson both write JSON; orjson is the faster)"
            raise CodecError(f"unknown codec '{name}'{origin}", hint)
        try:
            codec = factory()
        except ImportError as exc:
            raise CodecError(f"codec '{name}'{origin} is not installed ({exc})") from exc
        _CACHE[name] = codec
    return codec


def codec_for_wire(wire_id: int) -> Codec:
    """The codec a received batch header names."""
    name = _WIRE_NAMES.get(wire_id)
    if name is None:
        raise CodecError(f"batch names unknown codec id {wire_id}")
    return get_codec(name)
