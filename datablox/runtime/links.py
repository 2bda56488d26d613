"""Links behind out-ports: batching ZeroMQ pushes, in-process (fused) delivery, and askers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import orjson
import zmq

from datablox import frames
from datablox.codec import Codec
from datablox.errors import QueryError, QueryTimeout

#: Called while a send is blocked by backpressure; returns False to abandon waiting.
BlockedHook = Callable[[], None]


class RemoteLink:
    """One push connection to an element in another process.

    Records are buffered and sent as one ``[header, payload]`` batch when
    ``batch_size`` records are pending or when the oldest pending record is
    older than the flush interval (checked by the runtime loop). A full
    downstream queue blocks the send; while blocked, ``on_blocked`` keeps the
    process answering its care-taker.
    """

    __slots__ = (
        "_codec",
        "_on_bad",
        "_on_blocked",
        "abandoned",
        "batch_size",
        "blocked_seconds",
        "buf",
        "conn_id",
        "describe",
        "first_at",
        "sender_id",
        "sent",
        "seq",
        "sock",
    )

    def __init__(
        self,
        sock: zmq.Socket,  # type: ignore[type-arg]
        sender_id: int,
        conn_id: int,
        codec: Codec,
        batch_size: int,
        on_blocked: BlockedHook,
        describe: str,
        on_bad: Callable[[Any, str], None],
    ) -> None:
        self.sock = sock
        self.sender_id = sender_id
        self.conn_id = conn_id
        self._codec = codec
        self.batch_size = batch_size
        self._on_blocked = on_blocked
        self._on_bad = on_bad
        self.describe = describe
        self.buf: list[Any] = []
        self.first_at = 0.0
        self.seq = 0
        self.sent = 0
        self.blocked_seconds = 0.0
        self.abandoned = False

    def append(self, record: Any) -> None:
        buf = self.buf
        if not buf:
            self.first_at = time.monotonic()
        buf.append(record)
        if len(buf) >= self.batch_size:
            self.flush()

    def extend(self, records: list[Any]) -> None:
        if not self.buf:
            self.first_at = time.monotonic()
        self.buf.extend(records)
        if len(self.buf) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        buf = self.buf
        if not buf:
            return
        self.buf = []
        try:
            payload = self._codec.encode(buf)
        except (TypeError, ValueError, OverflowError):
            buf = self._encodable(buf)
            if not buf:
                return
            payload = self._codec.encode(buf)
        header = frames.pack_header(
            frames.DATA, self._codec.wire_id, self.sender_id, self.conn_id, self.seq, len(buf)
        )
        self._send([header, payload])
        self.seq += 1
        self.sent += len(buf)

    def _encodable(self, records: list[Any]) -> list[Any]:
        """The records that encode; each one that does not goes to ``on_bad``."""
        good = []
        for record in records:
            try:
                self._codec.encode([record])
            except (TypeError, ValueError, OverflowError) as exc:
                self._on_bad(
                    record,
                    f"CodecError: the record cannot be encoded with {self._codec.name} ({exc}); "
                    "records must be JSON-like: maps with string keys, lists, strings, "
                    "numbers, booleans and null",
                )
            else:
                good.append(record)
        return good

    def _send(self, parts: list[bytes]) -> None:
        try:
            self.sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
            return
        except zmq.Again:
            pass
        started = time.monotonic()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLOUT)
        while True:
            if poller.poll(100):
                try:
                    self.sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
                    break
                except zmq.Again:
                    continue
            self._on_blocked()
            if self.abandoned:
                break
        self.blocked_seconds += time.monotonic() - started

    def due(self, now: float, interval: float) -> bool:
        return bool(self.buf) and now - self.first_at >= interval

    def close(self) -> None:
        """Flush and send end-of-stream (total records sent in ``count``)."""
        self.flush()
        header = frames.pack_header(
            frames.EOS, self._codec.wire_id, self.sender_id, self.conn_id, self.seq, self.sent
        )
        self._send([header, b""])


class DroppingLink:
    """Stands in for a connection whose receiver gave up: counts what it discards."""

    __slots__ = ("conn_id", "dropped", "sent")
    buf: tuple[()] = ()

    def __init__(self, conn_id: int, sent: int, dropped: int) -> None:
        self.conn_id = conn_id
        self.sent = sent
        self.dropped = dropped

    def append(self, record: Any) -> None:
        self.dropped += 1

    def extend(self, records: list[Any]) -> None:
        self.dropped += len(records)

    def flush(self) -> None:
        pass

    def due(self, now: float, interval: float) -> bool:
        return False


class LocalLink:
    """A push connection to an element fused into the same process: direct calls.

    With ``copy`` set (its out-port fans out), the receiver gets its own deep
    copy, so that every element owns the records it receives, as it does when
    they arrive over a socket.
    """

    __slots__ = ("batch_size", "buf", "conn_id", "copy", "deliver", "sent")

    def __init__(self, conn_id: int, deliver: Callable[[list[Any]], None], batch_size: int) -> None:
        self.conn_id = conn_id
        self.deliver = deliver
        self.batch_size = batch_size
        self.buf: list[Any] = []
        self.sent = 0
        self.copy = False

    def append(self, record: Any) -> None:
        buf = self.buf
        buf.append(record)
        if len(buf) >= self.batch_size:
            self.flush()

    def extend(self, records: list[Any]) -> None:
        self.buf.extend(records)
        if len(self.buf) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        buf = self.buf
        if buf:
            self.buf = []
            self.sent += len(buf)
            self.deliver(orjson.loads(orjson.dumps(buf)) if self.copy else buf)

    def due(self, now: float, interval: float) -> bool:
        return bool(self.buf)


class Pending:
    """A query in flight; ``result(timeout)`` waits for its answer."""

    __slots__ = ("_asker", "_corr")

    def __init__(self, asker: RemoteAsker, corr: bytes) -> None:
        self._asker = asker
        self._corr = corr

    def result(self, timeout: float | None = 10.0) -> Any:
        return self._asker.wait(self._corr, timeout)


class RemoteAsker:
    """The asking side of a query port: one DEALER connected to every answerer.

    Each query carries an 8-byte correlation id, so many can be in flight and
    answers may arrive in any order.
    """

    def __init__(self, sock: zmq.Socket, describe: str) -> None:  # type: ignore[type-arg]
        self.sock = sock
        self.describe = describe
        self._ids = itertools.count(1)
        self._answers: dict[bytes, Any] = {}
        self._waiting: set[bytes] = set()
        self.asked = 0

    def ask_async(self, request: Any) -> Pending:
        corr = next(self._ids).to_bytes(8, "big")
        self._waiting.add(corr)
        self.sock.send_multipart([corr, orjson.dumps(request, option=orjson.OPT_NON_STR_KEYS)])
        self.asked += 1
        return Pending(self, corr)

    def wait(self, corr: bytes, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while corr not in self._answers:
            wait_ms = (
                None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            )
            if not self.sock.poll(wait_ms):
                self._waiting.discard(corr)
                raise QueryTimeout(f"{self.describe}: no answer within {timeout} s")
            got_corr, payload = self.sock.recv_multipart()
            if got_corr in self._waiting:
                self._answers[got_corr] = orjson.loads(payload)
        self._waiting.discard(corr)
        answer = self._answers.pop(corr)
        if answer.get("ok"):
            return answer.get("value")
        raise QueryError(f"{self.describe}: the answering element failed: {answer.get('error')}")


class _Done:
    __slots__ = ("_error", "_value")

    def __init__(self, value: Any, error: str | None) -> None:
        self._value = value
        self._error = error

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise QueryError(self._error)
        return self._value


class LocalAsker:
    """The asking side of a query port whose answerer is fused into the same process."""

    def __init__(self, answer: Callable[[Any], tuple[bool, Any]], describe: str) -> None:
        self._answer = answer
        self.describe = describe
        self.asked = 0

    def ask_async(self, request: Any) -> _Done:
        self.asked += 1
        ok, value = self._answer(request)
        if ok:
            return _Done(value, None)
        return _Done(None, f"{self.describe}: the answering element failed: {value}")
