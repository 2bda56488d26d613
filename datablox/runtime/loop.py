"""The event loop of an element process: receiving batches, answering queries, flushing, reporting.

Three ways of waiting share it, and each keeps the whole process serving:

- the main loop waits for input;
- a send blocked by a full downstream queue keeps answering queries and
  control messages (``while_blocked``), so an element that both feeds and
  answers its consumer cannot deadlock with it;
- an element waiting for the answer to its own query keeps answering
  queries, flushing batches and reading its inputs into a bounded backlog
  (``wait_readable``), so its peers are never stalled by its wait.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import zmq

from datablox import control, frames
from datablox.codec import Codec, codec_for_wire
from datablox.runtime.clock import Clock
from datablox.runtime.hosted import Hosted
from datablox.runtime.links import DroppingLink, LocalLink, RemoteLink, decode_query, encode_reply
from datablox.runtime.snapshots import Checkpointing
from datablox.security import KeyPair, connect_curve

REPORT_EVERY = 1.0
#: How long the loop goes on handling batches of one input before it serves the rest.
DRAIN_SECONDS = 0.05
#: Input batches an element waiting for a query answer reads ahead, at most.
BACKLOG_LIMIT = 16

Socket = zmq.Socket  # type: ignore[type-arg]
#: Control ops handled at once, even while an element's hook is running.
IMMEDIATE = frozenset({"stop", "abandon", "shard_add", "shard_switch", "add_inputs"})


class EventLoop(Checkpointing):
    """Sockets, accounts and the serving loop shared by every way of waiting."""

    codec: Codec

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.pid_name: str = spec["process"]
        self.zctx = zmq.Context()
        self.control = self.zctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.IDENTITY, spec.get("ident", self.pid_name).encode())
        keys = spec.get("control_keys")
        if keys:
            connect_curve(self.control, KeyPair.from_fields(keys), keys["server"].encode())
        self.control.setsockopt(zmq.LINGER, 2000)
        self.control.connect(spec["control"])
        self.batch_size: int = spec.get("batch_size", 1024)
        self.flush_interval: float = spec.get("flush_ms", 2.0) / 1000.0
        self.hwm: int = spec.get("hwm", 8)
        # Kernel socket buffers would otherwise hold megabytes beyond the high-water
        # mark: the queue of a connection would not really be bounded.
        self.sockbuf: int = spec.get("sockbuf", 256 * 1024)
        self.host: str = spec.get("host", "127.0.0.1")
        self.advertise: str = spec.get("advertise") or self.host
        #: the run's key pair when its data plane is encrypted (CURVE), else None
        self.data_keys = KeyPair.from_fields(spec["data_keys"]) if spec.get("data_keys") else None
        self.clock = Clock()
        self.hosted: dict[str, Hosted] = {}
        self.links: list[RemoteLink | LocalLink | DroppingLink] = []
        self.in_sockets: dict[Socket, tuple[Hosted, str]] = {}
        self.query_sockets: dict[Socket, tuple[Hosted, str]] = {}
        self.recv_counts: dict[int, int] = {}
        self.expected_seq: dict[int, int] = {}
        #: records of batches that arrived again (sequence number already seen), dropped
        self.duplicates: dict[int, int] = {}
        #: control messages that arrived while an element's hook was running (blocked or
        #: waiting for an answer); handled by the main loop, after the backlog
        self.deferred: list[dict[str, Any]] = []
        #: input batches read while an element waited for a query answer, in arrival order
        self.backlog: deque[tuple[Socket, list[bytes]]] = deque()
        self.poller = zmq.Poller()
        self.stopping = False
        #: a source of this process is still producing
        self.sources_active = False
        self.last_report = time.monotonic()
        self.reported: dict[str, tuple[float, float]] = {}

    # ---- hooks of the process ------------------------------------------------
    def on_control(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def connection_ended(self, conn_id: int) -> None:
        raise NotImplementedError

    def log(self, element: str, message: str) -> None:
        raise NotImplementedError

    def marker_arrived(self, conn: int, move: int) -> None:
        raise NotImplementedError

    def send(self, op: str, **fields: Any) -> None:
        self.control.send(control.encode({"op": op, "process": self.pid_name, **fields}))

    # ---- waiting while serving -----------------------------------------------
    def wait(self, seconds: float) -> None:
        """Pause a source while still flushing batches and answering control messages.

        Returns early, once per checkpoint, when one is due: elements downstream that
        align its barrier with other inputs' would otherwise hold those inputs back
        meanwhile (the source takes it once it yields).
        """
        for hosted in self.hosted.values():
            hosted.ctx.flush()
        previous = self.clock.enter(None)
        deadline = time.monotonic() + seconds
        try:
            while not self.stopping:
                take = self.pending_take()
                if take is not None and take != self.wait_cut:
                    self.wait_cut = take
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.service(min(left, self.flush_interval))
        finally:
            self.clock.leave(previous)

    #: the checkpoint a source's wait() last ended early for
    wait_cut: int | None = None

    def pending_take(self) -> int | None:
        """The checkpoint this process has to take, if any (see ProcessRuntime)."""
        return None

    def while_blocked(self, sock: Socket) -> None:
        """Wait until ``sock`` has room (or a while), answering queries and control meanwhile."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLOUT)
        poller.register(self.control, zmq.POLLIN)
        for other in self.query_sockets:
            poller.register(other, zmq.POLLIN)
        for ready, _ in poller.poll(100):
            if ready is self.control:
                self.defer_control(control.decode(ready.recv()))
            elif ready is not sock:
                self.answer(ready)
        self.report_if_due()

    def defer_control(self, msg: dict[str, Any]) -> None:
        """Inside an element's hook: a stop, the news that a receiver gave up (which
        ends a blocked send), a new shard member (a blocked sender's next batches
        may go to it), a shard's table switch (which a query may be waiting for)
        and new inputs (bookkeeping) are handled now; the rest waits for the main
        loop."""
        if msg["op"] in IMMEDIATE:
            self.on_control(msg)
        else:
            self.deferred.append(msg)

    def wait_readable(self, sock: Socket, seconds: float | None) -> bool:
        """Wait until ``sock`` (an asker's) is readable, serving the process meanwhile."""
        previous = self.clock.block()  # waiting on another element, not working
        try:
            return self._wait_readable(sock, seconds)
        finally:
            self.clock.leave(previous)

    def _wait_readable(self, sock: Socket, seconds: float | None) -> bool:
        deadline = None if seconds is None else time.monotonic() + seconds
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self.control, zmq.POLLIN)
        for other in self.query_sockets:
            poller.register(other, zmq.POLLIN)
        reading = len(self.backlog) < BACKLOG_LIMIT
        if reading:
            for other in self.in_sockets:
                poller.register(other, zmq.POLLIN)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            step = self.flush_interval if left is None else min(left, self.flush_interval)
            for ready, _ in poller.poll(math.ceil(step * 1000)):
                if ready is sock:
                    return True
                if ready is self.control:
                    self.defer_control(control.decode(ready.recv()))
                elif ready in self.query_sockets:
                    self.answer(ready)
                elif reading:
                    self.read_ahead(ready)
            if reading and len(self.backlog) >= BACKLOG_LIMIT:
                reading = False
                for other in self.in_sockets:
                    poller.unregister(other)
            # only batches to other processes: a fused receiver may be the waiting element
            self.flush_due(self.flush_interval, remote_only=True)
            self.report_if_due()

    def wait_for(self, condition: Any, seconds: float | None = None) -> bool:
        """Wait until ``condition()`` holds (True) or ``seconds`` pass (False), answering
        queries, control messages and flushing batches meanwhile."""
        deadline = None if seconds is None else time.monotonic() + seconds
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        for other in self.query_sockets:
            poller.register(other, zmq.POLLIN)
        while not condition():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            for ready, _ in poller.poll(math.ceil(self.flush_interval * 1000)):
                if ready is self.control:
                    self.defer_control(control.decode(ready.recv()))
                else:
                    self.answer(ready)
            self.flush_due(self.flush_interval, remote_only=True)
            self.report_if_due()
        return True

    def read_ahead(self, sock: Socket) -> None:
        while len(self.backlog) < BACKLOG_LIMIT:
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.backlog.append((sock, parts))

    # ---- the main loop's step ------------------------------------------------
    def service(self, timeout: float) -> None:
        """Handle whatever is readable within ``timeout`` seconds, then flush due batches."""
        self.send_written()
        backlog = self.backlog
        while backlog:
            sock, parts = backlog.popleft()
            self.receive(sock, parts)
        while self.deferred:
            self.on_control(self.deferred.pop(0))
        # ZeroMQ waits in whole milliseconds: round up, or a sub-millisecond
        # wait would become a busy loop that starves the other processes
        events = self.poller.poll(math.ceil(timeout * 1000))
        for sock, _ in events:
            if sock is self.control:
                self.on_control(control.decode(sock.recv()))
            elif sock in self.in_sockets:
                self.drain(sock)
            else:
                self.answer(sock)
        # Nothing more to read: send partly filled batches now rather than after
        # the flush interval, or each hop would add up to that interval again.
        # Sources keep the timer, so the batches they produce fill up.
        idle = events and not self.sources_active and not self.poller.poll(0)
        self.flush_due(0.0 if idle else self.flush_interval)
        self.report_if_due()

    def drain(self, sock: Socket) -> None:
        """Handle the batches waiting on ``sock``: up to 16, for at most :data:`DRAIN_SECONDS`
        (then control messages and reports get their turn)."""
        until = time.monotonic() + DRAIN_SECONDS
        for _ in range(16):
            if self.backlog:
                return  # read-ahead batches go first, in order
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.receive(sock, parts)
            if time.monotonic() >= until:
                return

    def receive(self, sock: Socket, parts: list[bytes]) -> None:
        hosted, port = self.in_sockets[sock]
        header_b, payload = parts
        header = frames.unpack_header(header_b)
        conn = header.connection
        expected = self.expected_seq.get(conn, 0)
        if header.seq != expected:
            if header.seq < expected and header.kind == frames.DATA:
                # already had it (its sender replayed): drop it, count it
                self.duplicates[conn] = self.duplicates.get(conn, 0) + header.records
                return
            self.note_gap(hosted, port, header, expected)
        if header.kind == frames.BARRIER:
            self.expected_seq[conn] = header.seq
            self.barrier_arrived(hosted, conn, header.records)
            return
        if header.kind == frames.MARKER:
            self.expected_seq[conn] = header.seq
            self.marker_arrived(conn, header.records)
            return
        self.expected_seq[conn] = header.seq + 1
        if header.kind == frames.EOS:
            self.end_arrived(conn)
            return
        records = codec_for_wire(header.codec).decode(payload)
        self.recv_counts[conn] = self.recv_counts.get(conn, 0) + len(records)
        self.records_arrived(hosted, conn, port, records)

    def note_gap(self, hosted: Hosted, port: str, header: frames.Header, expected: int) -> None:
        """A batch is missing on a connection: records were lost. Never silent."""
        if header.seq > expected:
            what = f"batches {expected}..{header.seq - 1} are missing"
        else:
            what = f"batch {header.seq} arrived out of order (expected {expected})"
        text = f"element '{hosted.name}' port '{port}' connection {header.connection}: {what}"
        self.log(hosted.name, text)
        self.send("problem", text=text)

    def answer(self, sock: Socket) -> None:
        hosted, port = self.query_sockets[sock]
        for _ in range(64):
            try:
                ident, corr, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            body = encode_reply(hosted.handler.query(port, decode_query(payload)))
            sock.send_multipart([ident, corr, body])

    def flush_due(self, interval: float, remote_only: bool = False) -> None:
        now = time.monotonic()
        clock = self.clock
        for link in self.links:
            if remote_only and not isinstance(link, RemoteLink):
                continue
            if link.due(now, interval):
                # encoding (and blocking) is the sending element's work
                previous = clock.enter(link.owner)  # type: ignore[union-attr]
                try:
                    link.flush()
                finally:
                    clock.leave(previous)

    # ---- load reports --------------------------------------------------------
    def report_if_due(self, now_anyway: bool = False) -> None:
        """Send the load report when one is due (``now_anyway``: at once, e.g. as the
        process fails, so the master's counters are not those of the last report)."""
        now = time.monotonic()
        if now - self.last_report < REPORT_EVERY and not now_anyway:
            return
        span = max(now - self.last_report, 1e-6)
        self.last_report = now
        self.clock.settle()
        elements = {}
        for hosted in self.hosted.values():
            work, blocked = hosted.handler.work.seconds, hosted.handler.blocked.seconds
            work0, blocked0 = self.reported.get(hosted.name, (0.0, 0.0))
            self.reported[hosted.name] = (work, blocked)
            busy = min(1.0, max(0.0, (work - work0) / span))
            stuck = min(1.0 - busy, max(0.0, (blocked - blocked0) / span))
            elements[hosted.name] = {"busy": busy, "blocked": stuck, "idle": 1.0 - busy - stuck}
        snapshot = self.snapshot()
        for name, figures in elements.items():
            snapshot["elements"][name].update(figures)
        self.send("load", **snapshot)

    def element_stats(self, hosted: Hosted) -> dict[str, Any]:
        return {
            "in": hosted.handler.received,
            "out": hosted.emitted(),
            "errors": hosted.handler.errors,
            "dead": hosted.ctx.dead_count,
            "progress": hosted.progress(),
            "busy_seconds": hosted.handler.work.seconds,
            "blocked_seconds": hosted.handler.blocked.seconds,
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "elements": {h.name: self.element_stats(h) for h in self.hosted.values()},
            "sent": {link.conn_id: link.sent for link in self.links},
            "recv": self.recv_counts,
            "duplicates": self.duplicates,
            "dropped": {
                link.conn_id: link.dropped for link in self.links if isinstance(link, DroppingLink)
            },
        }
