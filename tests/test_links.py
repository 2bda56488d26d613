"""A push link over a real loopback socket: batches never exceed the batch size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from datablox import frames
from datablox.codec import get_codec
from datablox.runtime.clock import Account, Clock
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


def test_a_send_blocked_outside_any_elements_code_is_its_senders_blocked_time() -> None:
    """A link's last batch, sent as its element's outputs end, runs outside the element's
    hooks; if the queue is full, that wait is the sending element's blocked time."""
    ctx = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)  # no peer: every send would block
        clock = Clock()
        blocked = Account()
        owner = Account(blocked)
        waits = []

        def on_blocked(sock: Any) -> None:
            waits.append(sock)
            link.abandoned = True  # the receiver gave up: the send ends

        link = RemoteLink(
            push, 1, 7, get_codec("orjson"), 100, on_blocked, "test", print, clock, owner
        )
        link.extend([{"n": 1}])
        assert clock.current is None
        link.flush()
        clock.settle()
        assert waits == [push]
        assert blocked.seconds > 0 and owner.seconds == 0
        assert clock.unowned_blocked.seconds == 0
    finally:
        ctx.destroy(linger=0)
