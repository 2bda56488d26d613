"""The asking side of a query port connected to a shard: routed, scattered or pooled queries.

One DEALER per member. A keyed shard's query goes to the member owning the
partition of the request's key (the class's ``request_key``), through the same
versioned routing table the push senders hold; while that partition moves,
the query waits here and goes to the new owner once the table switches, so it
never meets a member that has handed the partition's state away. A class
declaring ``query_routing = "scatter"`` gets every query on every member and
combines the answers (``gather``); a pool answers from any member.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from datablox.errors import QueryError, QueryTimeout
from datablox.partition import partition_of
from datablox.runtime.links import Pending, WaitHook, decode_query, encode_query

#: Waits, serving the process, until the condition holds or ``seconds`` pass (False).
WaitFor = Callable[[Callable[[], bool], "float | None"], bool]


class ShardAsker:
    """Queries into a shard's members (see the module docstring)."""

    def __init__(
        self,
        describe: str,
        mode: str,
        key: Sequence[str] | None,
        request_key: Callable[[Any], Any],
        gather: Callable[[list[Any]], Any],
        owners: Sequence[int] | None,
        wait_readable: WaitHook,
        wait_for: WaitFor,
    ) -> None:
        self.describe = describe
        #: the logical query connection (set by the wiring)
        self.conn_id = -1
        #: "key", "scatter" or "any"
        self.mode = mode
        self.key = key
        self.request_key = request_key
        self.gather = gather
        self.owners = list(owners) if owners is not None else None
        self._wait_readable = wait_readable
        self._wait_for = wait_for
        self.socks: dict[int, zmq.Socket] = {}  # type: ignore[type-arg]
        self._ids = itertools.count(1)
        self._turn = 0
        #: corr -> member numbers still to answer (scatter: several)
        self._waiting: dict[bytes, set[int]] = {}
        self._answers: dict[bytes, list[tuple[bool, Any]]] = {}
        self.paused: set[int] = set()
        #: corr -> (partition, payload) of queries held while their partition moves
        self.held: dict[bytes, tuple[int, bytes]] = {}
        self.asked = 0

    # ---- members ----------------------------------------------------------
    def add_member(self, member: int, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        self.socks[member] = sock

    def remove_member(self, member: int) -> None:
        sock = self.socks.pop(member, None)
        if sock is not None:
            sock.close(linger=0)

    def pause(self, partitions: Sequence[int]) -> None:
        self.paused.update(partitions)

    def switch(self, owners: Sequence[int]) -> None:
        self.owners = list(owners)
        self.paused = set()
        held, self.held = self.held, {}
        for corr, (partition, payload) in held.items():
            self._send(corr, [self.owners[partition]], payload)

    # ---- asking -----------------------------------------------------------
    def ask_async(self, request: Any) -> Pending:
        corr = next(self._ids).to_bytes(8, "big")
        payload = encode_query(request)
        self.asked += 1
        if self.mode == "scatter":
            self._send(corr, sorted(self.socks), payload)
        elif self.mode == "any" or self.owners is None:
            members = sorted(self.socks)
            self._turn = (self._turn + 1) % len(members)
            self._send(corr, [members[self._turn]], payload)
        else:
            partition = partition_of(self.request_key(decode_query(payload)))
            if partition in self.paused:
                self.held[corr] = (partition, payload)
                self._answers[corr] = []
            else:
                self._send(corr, [self.owners[partition]], payload)
        return Pending(self, corr)

    def _send(self, corr: bytes, members: list[int], payload: bytes) -> None:
        self._waiting[corr] = set(members)
        self._answers.setdefault(corr, [])
        for member in members:
            self.socks[member].send_multipart([corr, payload])

    def _take(self) -> None:
        for member, sock in self.socks.items():
            while True:
                try:
                    corr, payload = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                waiting = self._waiting.get(corr)
                if waiting is not None and member in waiting:
                    waiting.discard(member)
                    self._answers[corr].append(decode_query(payload))

    def wait(self, corr: bytes, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if corr in self.held and not self._wait_for(lambda: corr not in self.held, left()):
            self.held.pop(corr, None)
            self._answers.pop(corr, None)
            raise QueryTimeout(f"{self.describe}: no answer within {timeout} s (partition moving)")
        while self._waiting.get(corr):
            self._take()
            if not self._waiting.get(corr):
                break
            members = self._waiting[corr]
            sock = self.socks.get(next(iter(members)))
            if (sock is None or not self._wait_readable(sock, left())) and (
                deadline is not None and time.monotonic() >= deadline
            ):
                self._waiting.pop(corr, None)
                self._answers.pop(corr, None)
                raise QueryTimeout(f"{self.describe}: no answer within {timeout} s")
        self._waiting.pop(corr, None)
        answers = self._answers.pop(corr, [])
        for ok, value in answers:
            if not ok:
                raise QueryError(f"{self.describe}: the answering member failed: {value}")
        values = [value for _, value in answers]
        if self.mode == "scatter":
            return self.gather(values)
        return values[0]
