"""The element process: loads its elements, binds and wires sockets, runs the loop.

Started by a care-taker as ``python -m datablox.runtime.process SPEC.json``. The
spec (written by the care-taker from the master's plan) names the elements this
process hosts (one, or several when fused), every connection touching them,
the care-taker's control endpoint and the run folder.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

from datablox import control, frames
from datablox.codec import codec_for_wire, get_codec
from datablox.element import Source
from datablox.errors import DatabloxError
from datablox.ports import validate_params
from datablox.registry import add_search_path, resolve
from datablox.runtime.context import ElementContext, OutPort
from datablox.runtime.handling import DeadLetterFile, Handler, error_text
from datablox.runtime.hosted import Hosted
from datablox.runtime.links import (
    DroppingLink,
    LocalLink,
    RemoteLink,
)
from datablox.runtime.wiring import bind_inputs, connect_outputs

#: Exit code of a process whose elements could not start; it is not restarted.
EXIT_START_FAILED = 3
#: Exit code of a process whose care-taker went away.
EXIT_ORPHANED = 4
#: Exit code after a mistake in an element's use of datablox (e.g. emitting on a
#: port it does not have): a restart would only repeat it.
EXIT_ELEMENT_ERROR = 5

REPORT_EVERY = 1.0
#: Allocations between young-generation garbage collections in element processes.
GC_THRESHOLD = 50_000
STARTUP_TIMEOUT = 120.0


class StartFailed(Exception):
    def __init__(self, element: str, error: str) -> None:
        super().__init__(error)
        self.element = element
        self.error = error


class ProcessRuntime:
    """Runs the elements of one process until they have all finished."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.pid_name: str = spec["process"]
        self.zctx = zmq.Context()
        self.control = self.zctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.IDENTITY, self.pid_name.encode())
        self.control.setsockopt(zmq.LINGER, 2000)
        self.control.connect(spec["control"])
        self.codec_name: str | None = spec.get("codec")
        self.batch_size: int = spec.get("batch_size", 1024)
        self.flush_interval: float = spec.get("flush_ms", 2.0) / 1000.0
        self.hwm: int = spec.get("hwm", 8)
        # Kernel socket buffers would otherwise hold megabytes beyond the high-water
        # mark: the queue of a connection would not really be bounded.
        self.sockbuf: int = spec.get("sockbuf", 256 * 1024)
        self.restarted = bool(spec.get("binds"))
        self.host: str = spec.get("host", "127.0.0.1")
        self.dead = DeadLetterFile(Path(spec["run_dir"]) / "deadletter")
        self.hosted: dict[str, Hosted] = {}
        self.links: list[RemoteLink | LocalLink | DroppingLink] = []
        self.remote_links: list[RemoteLink] = []
        self.in_sockets: dict[zmq.Socket, tuple[Hosted, str]] = {}  # type: ignore[type-arg]
        self.query_sockets: dict[zmq.Socket, tuple[Hosted, str]] = {}  # type: ignore[type-arg]
        self.recv_counts: dict[int, int] = {}
        self.expected_seq: dict[int, int] = {}
        self.poller = zmq.Poller()
        self.stopping = False
        self.busy = 0.0
        self.waited = 0.0
        self.blocked_before = 0.0
        self.last_report = time.monotonic()
        self.busy_at_report = 0.0
        self.parent = os.getppid()
        self.conns = {c["id"]: c for c in spec["connections"]}

    # ---- messages to the care-taker ----------------------------------------
    def send(self, op: str, **fields: Any) -> None:
        self.control.send(control.encode({"op": op, "process": self.pid_name, **fields}))

    def log(self, element: str, message: str) -> None:
        print(f"[{element}] {message}", file=sys.stderr, flush=True)
        self.send("log", element=element, message=message)

    def _await(self, op: str) -> dict[str, Any]:
        """Block for a control message ``op`` (startup only), handling others meanwhile."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            self._check_parent()
            if self.control.poll(500):
                msg = control.decode(self.control.recv())
                if msg["op"] == op:
                    return msg
                self.on_control(msg)
        raise StartFailed("*", f"no '{op}' from the care-taker within {STARTUP_TIMEOUT:.0f} s")

    def _check_parent(self) -> None:
        if os.getppid() != self.parent:
            os._exit(EXIT_ORPHANED)

    # ---- start-up ----------------------------------------------------------
    def load(self) -> None:
        try:
            self.codec = get_codec(self.codec_name)
        except DatabloxError as exc:
            raise StartFailed("*", str(exc)) from None
        for folder in self.spec.get("search_path", []):
            add_search_path(folder)
        for espec in self.spec["elements"]:
            name = espec["name"]
            try:
                cls = resolve(espec["class"])
            except DatabloxError as exc:
                raise StartFailed(name, str(exc)) from None
            values, errors = validate_params(espec["class"], cls.params, espec.get("params", {}))
            if errors:
                raise StartFailed(name, "; ".join(str(e) for e in errors))
            try:
                element = cls()
            except Exception as exc:
                text = f"creating {espec['class']} failed: {error_text(exc)}"
                raise StartFailed(name, text) from None
            element.name = name
            ctx = ElementContext(name, {}, {}, self.dead, self.log, wait=self.wait)
            element._ctx = ctx
            hosted = Hosted(
                {**espec, "values": values}, element, ctx, Handler(element, ctx, self.log)
            )
            for port in cls.ports:
                if port.kind == "push" and port.direction == "out":
                    ctx.outputs[port.name] = OutPort(port.name, [])
            self.hosted[name] = hosted

    def start_elements(self) -> None:
        for hosted in self.hosted.values():
            try:
                hosted.element.on_start(hosted.spec["values"])
            except Exception as exc:
                raise StartFailed(hosted.name, error_text(exc)) from None
            if isinstance(hosted.element, Source):
                hosted.gen = iter(hosted.element.generate())
                self.resume(hosted, int(self.spec.get("resume", {}).get(hosted.name, 0)))

    def resume(self, hosted: Hosted, done: int) -> None:
        """After a restart, skip what a resumable source had already emitted."""
        element = hosted.element
        if done <= 0 or not isinstance(element, Source) or hosted.gen is None:
            return
        if not element.resumable:
            self.log(hosted.name, "restarted; not resumable, so it starts over from the beginning")
            return
        skipped = 0
        for record in hosted.gen:
            if record is not None:
                skipped += 1
                if skipped >= done:
                    break
        out = hosted.ctx.outputs.get(element.source_port)
        if out is not None:
            out.emitted = skipped
        self.log(hosted.name, f"restarted; resuming after the {skipped:,} records it had reported")

    # ---- running -----------------------------------------------------------
    def on_control(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op == "stop":
            self.stopping = True
        elif op == "ended":
            for conn_id in msg.get("conns", []):
                self.connection_ended(conn_id)
        elif op == "abandon":
            self.abandon(set(msg.get("conns", [])))
        elif op == "query_done":
            for conn_id in msg.get("conns", []):
                conn = self.conns.get(conn_id)
                if conn is None:
                    continue
                target = self.hosted.get(conn["to"]["element"])
                if target is not None:
                    target.open_queries.get(conn["to"]["port"], set()).discard(conn_id)
                    self.maybe_finish(target)

    def abandon(self, conns: set[int]) -> None:
        """The receivers of ``conns`` gave up: discard (and count) what is sent there."""
        for hosted in self.hosted.values():
            for out in hosted.ctx.outputs.values():
                for i, link in enumerate(out.links):
                    if isinstance(link, RemoteLink) and link.conn_id in conns:
                        link.abandoned = True
                        dropping = DroppingLink(link.conn_id, link.sent, len(link.buf))
                        out.links[i] = dropping
                        self.links[self.links.index(link)] = dropping
                        self.remote_links.remove(link)
                        self.blocked_before += link.blocked_seconds

    def connection_ended(self, conn_id: int) -> None:
        conn = self.conns[conn_id]
        target = self.hosted.get(conn["to"]["element"])
        if target is None:
            return
        port = conn["to"]["port"]
        waiting = target.open_inputs.get(port)
        if waiting is None or conn_id not in waiting:
            return
        waiting.discard(conn_id)
        if not waiting:
            self._call(target, "on_end", port)
        self.maybe_finish(target)

    def _call(self, hosted: Hosted, hook: str, *args: Any) -> None:
        try:
            getattr(hosted.element, hook)(*args)
        except DatabloxError:
            raise
        except Exception as exc:
            hosted.failed = f"{hook} failed: {error_text(exc)}"
            self.log(hosted.name, hosted.failed)

    def maybe_finish(self, hosted: Hosted) -> None:
        if hosted.finished or hosted.waiting_for():
            return
        hosted.finished = True
        self._call(hosted, "on_finish")
        for out in hosted.ctx.outputs.values():
            for link in out.links:
                if isinstance(link, RemoteLink):
                    link.close()
                elif isinstance(link, LocalLink):
                    link.flush()
                    self.connection_ended(link.conn_id)
        for conn in self.spec["connections"]:
            if conn["kind"] == "query" and conn["from"]["element"] == hosted.name:
                target = self.hosted.get(conn["to"]["element"])
                if target is not None:
                    target.open_queries.get(conn["to"]["port"], set()).discard(conn["id"])
                    self.maybe_finish(target)
        self.send(
            "element_finished",
            element=hosted.name,
            failed=hosted.failed,
            stats=self.element_stats(hosted),
        )

    def element_stats(self, hosted: Hosted) -> dict[str, Any]:
        return {
            "in": hosted.handler.received,
            "out": hosted.emitted(),
            "errors": hosted.handler.errors,
            "dead": hosted.ctx.dead_count,
            "progress": hosted.progress(),
        }

    def wait(self, seconds: float) -> None:
        """Pause a source while still flushing batches and answering control messages."""
        started = time.monotonic()
        deadline = started + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.service(min(left, self.flush_interval))
        self.waited += time.monotonic() - started

    def while_blocked(self) -> None:
        if self.control.poll(0):
            self.on_control(control.decode(self.control.recv()))
        self.report_if_due()

    def pump(self, hosted: Hosted) -> None:
        """Pull up to one batch of records from a source's generator."""
        element = hosted.element
        assert isinstance(element, Source) and hosted.gen is not None
        out = hosted.ctx.outputs.get(element.source_port)
        links = out.links if out else []
        gen = hosted.gen
        n = 0
        try:
            for record in gen:
                if record is None:
                    break
                n += 1
                for link in links:
                    link.append(record)
                if n >= self.batch_size or self.stopping:
                    break
            else:
                hosted.source_done = True
        except DatabloxError:
            raise
        except Exception as exc:
            hosted.failed = f"generate failed: {error_text(exc)}"
            self.log(hosted.name, hosted.failed)
            hosted.source_done = True
        if out is not None:
            out.emitted += n
        if self.stopping:
            hosted.source_done = True
        if hosted.source_done:
            self.maybe_finish(hosted)

    def service(self, timeout: float) -> None:
        """Handle whatever is readable within ``timeout`` seconds, then flush due batches."""
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
        self.flush_due()
        self.report_if_due()

    def drain(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        hosted, port = self.in_sockets[sock]
        for _ in range(16):
            try:
                header_b, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            header = frames.unpack_header(header_b)
            conn = header.connection
            expected = self.expected_seq.get(conn, 0)
            if header.seq != expected and not (self.restarted and conn not in self.expected_seq):
                self.note_gap(hosted, port, header, expected)
            self.expected_seq[conn] = header.seq + 1
            if header.kind == frames.EOS:
                self.connection_ended(conn)
                continue
            started = time.perf_counter()
            records = codec_for_wire(header.codec).decode(payload)
            self.recv_counts[conn] = self.recv_counts.get(conn, 0) + len(records)
            hosted.handler.batch(port, records)
            self.busy += time.perf_counter() - started

    def note_gap(self, hosted: Hosted, port: str, header: frames.Header, expected: int) -> None:
        if header.seq == 0:
            what = "its sender restarted; batches in flight during the restart may be lost"
        elif header.seq > expected:
            what = f"batches {expected}..{header.seq - 1} are missing"
        else:
            what = f"batch {header.seq} arrived again (expected {expected})"
        self.log(hosted.name, f"port '{port}' connection {header.connection}: {what}")

    def answer(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        hosted, port = self.query_sockets[sock]
        for _ in range(64):
            try:
                ident, corr, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            started = time.perf_counter()
            ok, value = hosted.handler.query(port, orjson.loads(payload))
            self.busy += time.perf_counter() - started
            reply = {"ok": True, "value": value} if ok else {"ok": False, "error": value}
            try:
                body = orjson.dumps(reply, option=orjson.OPT_NON_STR_KEYS, default=repr)
            except TypeError as exc:
                body = orjson.dumps({"ok": False, "error": f"answer cannot be encoded: {exc}"})
            sock.send_multipart([ident, corr, body])

    def flush_due(self) -> None:
        now = time.monotonic()
        interval = self.flush_interval
        for link in self.links:
            if link.due(now, interval):
                link.flush()

    def report_if_due(self) -> None:
        now = time.monotonic()
        if now - self.last_report < REPORT_EVERY:
            return
        self._check_parent()
        span = now - self.last_report
        busy = min(1.0, max(0.0, (self.busy - self.busy_at_report) / span))
        self.busy_at_report = self.busy
        self.last_report = now
        self.send("load", **self.snapshot(), busy=busy)

    def snapshot(self) -> dict[str, Any]:
        return {
            "elements": {h.name: self.element_stats(h) for h in self.hosted.values()},
            "sent": {link.conn_id: link.sent for link in self.links},
            "recv": self.recv_counts,
            "blocked": self.blocked_before
            + sum(link.blocked_seconds for link in self.remote_links),
            "dropped": {
                link.conn_id: link.dropped for link in self.links if isinstance(link, DroppingLink)
            },
        }

    def run_loop(self) -> None:
        sources = [h for h in self.hosted.values() if h.is_source]
        for hosted in self.hosted.values():
            self.maybe_finish(hosted)
        while not all(h.finished for h in self.hosted.values()):
            active = [h for h in sources if not h.source_done]
            if active:
                for hosted in active:
                    started = time.perf_counter()
                    waited = self.waited
                    self.pump(hosted)
                    self.busy += time.perf_counter() - started - (self.waited - waited)
                self.service(0)
            else:
                pending = any(link.buf for link in self.links)
                self.service(self.flush_interval if pending else 0.2)

    def run(self) -> int:
        self.poller.register(self.control, zmq.POLLIN)
        try:
            self.load()
            endpoints = bind_inputs(self)
            self.send("ready", endpoints=endpoints, pid=os.getpid())
            wire = self._await("wire")
            connect_outputs(self, wire["endpoints"])
            self.start_elements()
            # Records are acyclic and freed by reference counting; the cyclic
            # collector, run every few hundred allocations by default, only adds
            # pauses. Collect rarely, and never rescan what start-up created.
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_THRESHOLD, 50, 100)
            self.send("started")
            self._await("go")
            self.on_control({"op": "ended", "conns": wire.get("ended", [])})
            self.on_control({"op": "query_done", "conns": wire.get("query_done", [])})
        except StartFailed as exc:
            self.send("failed", element=exc.element, error=exc.error)
            self.close(linger=True)
            return EXIT_START_FAILED
        self.run_loop()
        for link in self.links:
            link.flush()
        self.send("finished", **self.snapshot())
        self.close(linger=True)
        return 0

    def close(self, linger: bool) -> None:
        self.dead.close()
        self.zctx.destroy(linger=None if linger else 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Ctrl-C in a terminal reaches the whole process group; the master turns it
    # into an orderly stop, so element processes ignore it themselves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = orjson.loads(Path(argv[0]).read_bytes())
    runtime = ProcessRuntime(spec)
    signal.signal(signal.SIGTERM, lambda *_: setattr(runtime, "stopping", True))
    try:
        return runtime.run()
    except DatabloxError as exc:
        # the message names the element and port; a traceback would add nothing
        print(f"error: {exc}", file=sys.stderr, flush=True)
        runtime.send("failed", element="*", error=str(exc), stage="run")
        runtime.close(linger=True)
        return EXIT_ELEMENT_ERROR


if __name__ == "__main__":
    sys.exit(main())
