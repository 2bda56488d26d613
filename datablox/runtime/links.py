"""Links behind out-ports: batching ZeroMQ pushes, in-process (fused) delivery, and askers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
import zmq

from datablox import frames
from datablox.codec import Codec
from datablox.errors import QueryError, QueryTimeout
from datablox.runtime.clock import Account, Clock

#: Called while a send to a socket is blocked by backpressure: waits until the
#: socket may take the batch, serving the rest of the process meanwhile.
BlockedHook = Callable[[Any], None]
#: Waits until a socket is readable (True) or ``seconds`` pass (False; None: no limit),
#: serving the rest of the process meanwhile.
WaitHook = Callable[[Any, "float | None"], bool]
#: Errors a codec raises for a value it cannot carry.
REFUSALS = (TypeError, ValueError, OverflowError, RecursionError)


class BatchEncoder:
    """Encodes batches with a codec; a record the codec refuses goes to ``on_bad`` alone.

    The one place where the codec's rule for values it cannot carry is applied,
    for batches sent over sockets and for batches handed to a fused neighbour
    alike, so a record meets the same fate in every fusion mode.
    """

    __slots__ = ("codec", "on_bad")

    def __init__(self, codec: Codec, on_bad: Callable[[Any, str], None]) -> None:
        self.codec = codec
        self.on_bad = on_bad

    def encode(self, records: list[Any]) -> tuple[bytes, int]:
        """The payload and how many records it holds (0: every record was refused)."""
        try:
            return self.codec.encode(records), len(records)
        except REFUSALS:
            pass
        good = []
        for record in records:
            try:
                self.codec.encode([record])
            except REFUSALS as exc:
                self.on_bad(record, refusal_text(self.codec, exc))
            else:
                good.append(record)
        if not good:
            return b"", 0
        return self.codec.encode(good), len(good)

    def reencode(self, records: list[Any]) -> list[Any]:
        """The records as a receiver over a socket would get them (refused ones dead-lettered)."""
        payload, n = self.encode(records)
        return self.codec.decode(payload) if n else []


def refusal_text(codec: Codec, exc: BaseException) -> str:
    """The dead-letter reason for a record ``codec`` cannot carry."""
    detail = str(exc) or type(exc).__name__
    return f"CodecError: the record cannot be encoded with {codec.name} ({detail}); {codec.rule}"


class RemoteLink:
    """One push connection to an element in another process.

    Records are buffered and sent as one ``[header, payload]`` batch when
    ``batch_size`` records are pending or when the oldest pending record is
    older than the flush interval (checked by the runtime loop). A full
    downstream queue blocks the send; while blocked, ``on_blocked`` keeps the
    process answering queries and its care-taker. Records emitted meanwhile
    (by a query's answerer) stay buffered until the held batch has gone, so
    batches leave in order with increasing sequence numbers.
    """

    __slots__ = (
        "_clock",
        "_codec",
        "_encoder",
        "_on_blocked",
        "abandoned",
        "batch_size",
        "buf",
        "conn_id",
        "describe",
        "ended",
        "first_at",
        "owner",
        "sender_id",
        "sending",
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
        clock: Clock,
        owner: Account | None = None,
    ) -> None:
        self.sock = sock
        self._clock = clock
        #: the sending element's work account (batches flushed by the loop are its work)
        self.owner = owner
        self.sender_id = sender_id
        self.conn_id = conn_id
        self._codec = codec
        self._encoder = BatchEncoder(codec, on_bad)
        self.batch_size = batch_size
        self._on_blocked = on_blocked
        self.describe = describe
        self.buf: list[Any] = []
        self.first_at = 0.0
        self.seq = 0
        self.sent = 0
        self.sending = False
        self.abandoned = False
        #: end-of-stream was sent: nothing may follow it on the connection
        self.ended = False

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
        size = self.batch_size
        while len(self.buf) >= size and not self.sending:
            # whole batches of batch_size leave now; the rest waits for more or the timer
            if len(self.buf) == size:
                self.flush()
                return
            rest = self.buf[size:]
            del self.buf[size:]
            self.flush()
            self.buf[:0] = rest
            self.first_at = time.monotonic()

    def flush(self) -> None:
        buf = self.buf
        if not buf or self.sending:
            return
        self.buf = []
        payload, n = self._encoder.encode(buf)
        if not n:
            return
        seq = self.seq
        self.seq += 1
        self.sent += n
        header = frames.pack_header(
            frames.DATA, self._codec.wire_id, self.sender_id, self.conn_id, seq, n
        )
        self._send([header, payload])

    def _send(self, parts: list[bytes]) -> None:
        try:
            self.sock.send_multipart(parts, flags=zmq.NOBLOCK)
            return
        except zmq.Again:
            pass
        previous = self._clock.block(self.owner)
        self.sending = True
        try:
            while not self.abandoned:
                self._on_blocked(self.sock)
                try:
                    self.sock.send_multipart(parts, flags=zmq.NOBLOCK)
                    break
                except zmq.Again:
                    continue
        finally:
            self.sending = False
            self._clock.leave(previous)

    def due(self, now: float, interval: float) -> bool:
        return bool(self.buf) and now - self.first_at >= interval

    def barrier(self, checkpoint: int) -> None:
        """Flush, then send checkpoint ``checkpoint``'s barrier (it takes no sequence number)."""
        if self.ended:
            return
        self.flush()
        header = frames.pack_header(
            frames.BARRIER, self._codec.wire_id, self.sender_id, self.conn_id, self.seq, checkpoint
        )
        self._send([header, b""])

    def marker(self, move: int) -> None:
        """Flush, then tell the receiver that partition move ``move`` sends it nothing more
        of the moving partitions (it takes no sequence number). After the end of the stream
        there is nothing to mark: the receiver no longer waits for this connection."""
        if self.ended:
            return
        self.flush()
        header = frames.pack_header(
            frames.MARKER, self._codec.wire_id, self.sender_id, self.conn_id, self.seq, move
        )
        self._send([header, b""])

    def close(self) -> None:
        """Flush and send end-of-stream (total records sent in ``count``)."""
        if self.ended:
            return
        self.ended = True
        self.flush()
        header = frames.pack_header(
            frames.EOS, self._codec.wire_id, self.sender_id, self.conn_id, self.seq, self.sent
        )
        self._send([header, b""])


class DroppingLink:
    """Stands in for a connection whose receiver gave up: counts what it discards."""

    __slots__ = ("conn_id", "dropped", "sent")
    buf: tuple[()] = ()
    owner = None

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

    def barrier(self, checkpoint: int) -> None:
        pass


class LocalLink:
    """A push connection to an element fused into the same process: direct calls.

    Each batch is encoded and decoded with the run's codec on the way, exactly
    as over a socket, so the receiver gets its own copy and a record the codec
    would convert or refuse is converted or dead-lettered as it would be
    between separate processes. The copy is skipped only when nothing could
    differ: the out-port does not fan out and the sending element declares
    ``plain_records`` (it emits only values every codec carries unchanged).
    """

    __slots__ = (
        "batch_size",
        "buf",
        "conn_id",
        "deliver",
        "encoder",
        "fans_out",
        "on_barrier",
        "owner",
        "sender",
        "sent",
    )

    def __init__(
        self,
        conn_id: int,
        deliver: Callable[[list[Any]], None],
        batch_size: int,
        encoder: BatchEncoder,
        sender: Any,
        owner: Account | None = None,
        on_barrier: Callable[[int], None] | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.deliver = deliver
        self.on_barrier = on_barrier
        self.batch_size = batch_size
        self.encoder = encoder
        self.sender = sender
        self.owner = owner
        self.fans_out = False
        self.buf: list[Any] = []
        self.sent = 0

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
            if self.fans_out or not self.sender.plain_records:
                buf = self.encoder.reencode(buf)
                if not buf:
                    return
            self.sent += len(buf)
            self.deliver(buf)

    def due(self, now: float, interval: float) -> bool:
        return bool(self.buf)

    def barrier(self, checkpoint: int) -> None:
        self.flush()
        if self.on_barrier is not None:
            self.on_barrier(checkpoint)


class Waits(Protocol):
    def wait(self, corr: bytes, timeout: float | None) -> Any: ...


class Pending:
    """A query in flight; ``result(timeout)`` waits for its answer."""

    __slots__ = ("_asker", "_corr")

    def __init__(self, asker: Waits, corr: bytes) -> None:
        self._asker = asker
        self._corr = corr

    def result(self, timeout: float | None = 10.0) -> Any:
        return self._asker.wait(self._corr, timeout)


class RemoteAsker:
    """The asking side of a query port: one DEALER connected to every answerer.

    Each query carries an 8-byte correlation id, so many can be in flight and
    answers may arrive in any order.
    """

    def __init__(
        self,
        sock: zmq.Socket,  # type: ignore[type-arg]
        describe: str,
        wait_readable: WaitHook,
    ) -> None:
        self.sock = sock
        self.describe = describe
        self._wait_readable = wait_readable
        self._ids = itertools.count(1)
        self._answers: dict[bytes, Any] = {}
        self._waiting: set[bytes] = set()
        self.asked = 0

    def ask_async(self, request: Any) -> Pending:
        corr = next(self._ids).to_bytes(8, "big")
        self._waiting.add(corr)
        self.sock.send_multipart([corr, encode_query(request)])
        self.asked += 1
        return Pending(self, corr)

    def wait(self, corr: bytes, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while corr not in self._answers:
            left = None if deadline is None else deadline - time.monotonic()
            if not self._wait_readable(self.sock, left):
                self._waiting.discard(corr)
                raise QueryTimeout(f"{self.describe}: no answer within {timeout} s")
            # take every answer that is there, not one per wait
            while True:
                try:
                    got_corr, payload = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if got_corr in self._waiting:
                    self._answers[got_corr] = decode_query(payload)
        self._waiting.discard(corr)
        ok, value = self._answers.pop(corr)
        if ok:
            return value
        raise QueryError(f"{self.describe}: the answering element failed: {value}")


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
    """The asking side of a query port whose answerer is fused into the same process.

    Requests and answers go through the query encoding as over a socket, so a
    fused asker sees what a remote one would.
    """

    def __init__(self, answer: Callable[[Any], tuple[bool, Any]], describe: str) -> None:
        self._answer = answer
        self.describe = describe
        self.asked = 0

    def ask_async(self, request: Any) -> _Done:
        request = decode_query(encode_query(request))
        self.asked += 1
        ok, value = decode_query(encode_reply(self._answer(request)))
        if ok:
            return _Done(value, None)
        return _Done(None, f"{self.describe}: the answering element failed: {value}")


def encode_query(request: Any) -> bytes:
    """A query request on the wire (JSON; a request it cannot hold raises TypeError)."""
    return orjson.dumps(request, option=orjson.OPT_NON_STR_KEYS)


def decode_query(payload: bytes) -> Any:
    return orjson.loads(payload)


def encode_reply(result: tuple[bool, Any]) -> bytes:
    """``(ok, answer-or-error)`` on the wire; an answer JSON cannot hold becomes an error."""
    ok, value = result
    try:
        return orjson.dumps([ok, value], option=orjson.OPT_NON_STR_KEYS)
    except REFUSALS as exc:
        return orjson.dumps([False, f"the answer cannot be encoded as JSON ({exc})"])
