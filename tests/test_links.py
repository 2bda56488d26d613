"""A push link over a real loopback socket: batches never exceed the batch size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from datablox import frames
from datablox.codec import get_codec
from datablox.runtime.clock import Clock
from datablox.runtime.links import RemoteLink


@pytest.fixture
def pair() -> Iterator[tuple[Any, Any]]:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        yield push, pull
    finally:
        ctx.destroy(linger=0)


def received(pull: Any) -> list[tuple[int, list[Any]]]:
    """(seq, records) of every batch waiting on ``pull``, end-of-stream included."""
    got = []
    while pull.poll(5000):
        header_b, payload = pull.recv_multipart()
        header = frames.unpack_header(header_b)
        records = get_codec("orjson").decode(payload) if header.kind == frames.DATA else []
        got.append((header.seq, records))
        if header.kind == frames.EOS:
            break
    return got


def test_a_long_list_leaves_in_batches_of_the_batch_size(pair: tuple[Any, Any]) -> None:
    push, pull = pair
    codec = get_codec("orjson")
    link = RemoteLink(push, 1, 7, codec, 100, lambda sock: None, "test", print, Clock())
    link.extend([{"n": i} for i in range(250)])
    assert len(link.buf) == 50  # the rest waits for more records or the flush timer
    link.extend([{"n": i} for i in range(250, 300)])
    link.close()
    batches = received(pull)
    assert [len(records) for _, records in batches] == [100, 100, 100, 0]
    assert [seq for seq, _ in batches] == [0, 1, 2, 3]
    assert [r["n"] for _, records in batches for r in records] == list(range(300))
