"""The element process: loads its elements, binds and wires sockets, runs the loop.

Started by a care-taker as ``python -m datablox.runtime.process SPEC.json``. The
spec (written by the care-taker from the master's plan) names the elements this
process hosts (one, or several when fused), every connection touching them,
the care-taker's control endpoint and the run folder.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import orjson
import zmq

from datablox import control
from datablox.codec import get_codec
from datablox.element import Source
from datablox.errors import DatabloxError, ElementError
from datablox.ports import validate_params
from datablox.registry import add_search_path, resolve
from datablox.runtime.checkpoints import CheckpointStore
from datablox.runtime.context import ElementContext, OutPort
from datablox.runtime.handling import DeadLetterFile, Handler, error_text, named
from datablox.runtime.hosted import Hosted
from datablox.runtime.links import DroppingLink, LocalLink, RemoteLink
from datablox.runtime.loop import EventLoop
from datablox.runtime.moves import Resharding
from datablox.runtime.shardlink import ShardLink
from datablox.runtime.sources import pump, resume
from datablox.runtime.wiring import bind_inputs, connect_outputs

# The runtime's own exit codes lie apart from the small ones an element's code (or a
# library it calls) may pass to os._exit: such an exit is a crash, restarted as one.
#: Exit code of a process whose elements could not start; it is not restarted.
EXIT_START_FAILED = 83
#: Exit code of a process whose care-taker (or master, when embedded) went away.
EXIT_ORPHANED = 84
#: Exit code after a mistake in an element's use of datablox (e.g. emitting on a
#: port it does not have), or an ElementError raised on purpose: a restart
#: would only repeat it.
EXIT_ELEMENT_ERROR = 85
#: Exit code after an element's code called ``sys.exit`` while the data flowed: a
#: crash like any other (the run is restored from its last checkpoint).
EXIT_ELEMENT_EXITED = 70
#: Exit code after a second SIGTERM (the first one asks for an orderly stop).
EXIT_TERMINATED = 128 + signal.SIGTERM

#: Records are acyclic and freed by reference counting; collect cycles rarely.
GC_THRESHOLD = 50_000
#: How often the watchdog checks that the care-taker is still there.
WATCHDOG_PERIOD = 0.5


class StartFailed(Exception):
    def __init__(self, element: str, error: str) -> None:
        super().__init__(error)
        self.element = element
        self.error = error


def watch_parent(parent: int) -> None:
    """Exit the process as soon as its parent is gone, whatever the elements' code is doing.

    Runs in a daemon thread, so an element stuck in its own code (blocking in
    ``on_finish``, ignoring signals) cannot outlive its care-taker.
    """

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_PERIOD)  # a watchdog's period, not a wait for a condition
            if os.getppid() != parent:
                os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="datablox-watchdog", daemon=True).start()


class ProcessRuntime(EventLoop):
    """Runs the elements of one process until they have all finished."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.codec_name: str | None = spec.get("codec")
        self.startup_timeout = float(spec.get("startup_timeout", 60.0))
        self.dead = DeadLetterFile(spec["run_dir"])
        self.store = CheckpointStore(spec["run_dir"])
        #: incarnation of the run: every restore from a checkpoint starts a new one
        self.epoch = int(spec.get("epoch", 0))
        self.init_checkpointing()
        self.resharding = Resharding(self)
        self.conns = {c["id"]: c for c in spec["connections"]}
        self.dispatcher = control.Dispatcher(
            {
                "stop": self._on_stop,
                "ended": self._on_ended,
                "abandon": self._on_abandon,
                "query_done": self._on_query_done,
                "checkpoint": self.on_checkpoint_op,
                "checkpoint_done": self.on_checkpoint_done_op,
                **self.resharding.ops(),
            },
            f"element process {self.pid_name}",
        )

    # ---- messages to the care-taker ----------------------------------------
    def send(self, op: str, **fields: Any) -> None:
        super().send(op, epoch=self.epoch, **fields)

    def log(self, element: str, message: str) -> None:
        print(f"[{element}] {message}", file=sys.stderr, flush=True)
        self.send("log", element=element, message=message)

    def warn(self, text: str) -> None:
        """Something the user should know that is not an error: the summary shows it."""
        print(f"warning: {text}", file=sys.stderr, flush=True)
        self.send("warning", text=text)

    def _await(self, op: str) -> dict[str, Any]:
        """Block for a control message ``op`` (startup only), handling others meanwhile."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.control.poll(200):
                msg = control.decode(self.control.recv())
                if msg["op"] == op:
                    return msg
                self.on_control(msg)
        raise StartFailed("*", f"no '{op}' from the care-taker within {self.startup_timeout:.0f} s")

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
            handler = Handler(element, ctx, self.log, self.clock, self.warn)
            hosted = Hosted({**espec, "values": values}, element, ctx, handler)
            for port in cls.ports:
                if port.kind == "push" and port.direction == "out":
                    ctx.outputs[port.name] = OutPort(port.name, [], self.batch_size)
            self.hosted[name] = hosted

    def start_elements(self) -> None:
        for hosted in self.hosted.values():
            previous = self.clock.enter(hosted.handler.work)
            hosted.ctx.starting = True
            try:
                hosted.element.on_start(hosted.spec["values"])
            except ElementError as exc:
                raise StartFailed(hosted.name, str(exc)) from None
            except Exception as exc:
                raise StartFailed(hosted.name, error_text(exc)) from None
            finally:
                hosted.ctx.starting = False
                self.clock.leave(previous)
            if self.spec.get("restore"):
                self.restore(hosted)
            elif self.spec.get("joining"):
                pass  # a new shard member: it starts empty; its first snapshot is the next one
            else:
                # checkpoint 0: the state at start, what a restore before any
                # other checkpoint completed goes back to
                self.write_and_ack(hosted, 0, self.runtime_state(hosted), time.monotonic())
            if hosted.is_source and not hosted.outputs_ended:
                element = hosted.element
                assert isinstance(element, Source)
                hosted.gen = self.generator(hosted, element)
                if hosted.skip:
                    # skipping re-runs generate(): what it dead-letters on the way was
                    # dead-lettered before the checkpoint already
                    ctx, handler = hosted.ctx, hosted.handler
                    kept = (ctx.dead_count, handler.errors, self.dead.position(hosted.name))
                    resume(hosted, hosted.skip, self.log)
                    ctx.dead_count, handler.errors = kept[0], kept[1]
                    self.dead.truncate(hosted.name, kept[2])

    def generator(self, hosted: Hosted, element: Source) -> Any:
        """The source's records (or lists of them), as the runtime pulls them."""
        hook = "generate_batches" if hosted.batched else "generate"
        previous = self.clock.enter(hosted.handler.work)
        try:
            made = getattr(element, hook)(self.batch_size) if hosted.batched else element.generate()
        except Exception as exc:
            raise StartFailed(hosted.name, f"{hook}() failed: {error_text(exc)}") from None
        finally:
            self.clock.leave(previous)
        try:
            return iter(made)
        except TypeError:
            raise StartFailed(
                hosted.name,
                f"{hook}() returned {type(made).__name__}, not an iterator of records "
                "(write it as a generator: yield each record)",
            ) from None

    def restore(self, hosted: Hosted) -> None:
        """Restore ``hosted`` from the checkpoint the spec names, if any."""
        restore = self.spec.get("restore")
        file = (restore or {}).get("files", {}).get(hosted.name)
        if file is None:
            return
        try:
            snap = self.store.read_snapshot(file)
        except Exception as exc:
            raise StartFailed(hosted.name, f"cannot read its snapshot {file}: {exc}") from None
        previous = self.clock.enter(hosted.handler.work)
        try:
            why = self.restore_element(hosted, snap, file)
        except ElementError:
            raise
        except Exception as exc:
            raise StartFailed(hosted.name, f"restore failed: {error_text(exc)}") from None
        finally:
            self.clock.leave(previous)
        self.dead.truncate(hosted.name, snap["dead_offset"])
        if why is not None:
            self.send(
                "not_replayable",
                element=hosted.name,
                position=snap["position"],
                checkpoint=restore["checkpoint"],  # type: ignore[index]
                reason=why,
            )

    # ---- control -----------------------------------------------------------
    def on_control(self, msg: dict[str, Any]) -> None:
        self.dispatcher.dispatch(msg)

    def _on_stop(self, msg: dict[str, Any]) -> None:
        self.stopping = True

    def _on_ended(self, msg: dict[str, Any]) -> None:
        for conn_id in msg.get("conns", []):
            self.end_arrived(conn_id)

    def _on_abandon(self, msg: dict[str, Any]) -> None:
        """The receivers of these connections gave up: discard (and count) what is sent there."""
        conns = set(msg.get("conns", []))
        for hosted in self.hosted.values():
            for out in hosted.ctx.ports.values():
                for i, link in enumerate(out.links):
                    if isinstance(link, RemoteLink) and link.conn_id in conns:
                        link.abandoned = True
                        # what it holds can never be delivered: the exit must not wait for it
                        link.sock.setsockopt(zmq.LINGER, 0)
                        dropping = DroppingLink(link.conn_id, link.sent, len(link.buf))
                        out.links[i] = dropping
                        self.links[self.links.index(link)] = dropping

    def _on_query_done(self, msg: dict[str, Any]) -> None:
        for conn_id in msg.get("conns", []):
            conn = self.conns.get(conn_id)
            if conn is None:
                continue
            target = self.hosted.get(conn["to"]["element"])
            if target is not None:
                target.open_queries.get(conn["to"]["port"], set()).discard(conn_id)
                self.maybe_finish(target)

    # ---- ends of streams -----------------------------------------------------
    def target_of(self, conn_id: int) -> Hosted | None:
        conn = self.conns.get(conn_id)
        return None if conn is None else self.hosted.get(conn["to"]["element"])

    def marker_arrived(self, conn: int, move: int) -> None:
        self.resharding.marker_arrived(conn, move)

    def dead_position(self, element: str) -> int:
        return self.dead.position(element)

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
        target.ended_inputs.add(conn_id)
        if self.resharding.moves_out or self.resharding.releasing:
            self.resharding.check_moves()  # an ended input sends no marker
        if not waiting:
            self.call_hook(target, "on_end", port)
        self.maybe_finish(target)

    def call_hook(self, hosted: Hosted, hook: str, *args: Any) -> None:
        previous = self.clock.enter(hosted.handler.work)
        try:
            getattr(hosted.element, hook)(*args)
            hosted.ctx.flush()
        except ElementError as exc:
            where = f"port '{args[0]}' (on_end)" if hook == "on_end" else f"in {hook}"
            raise named(exc, hosted.name, where) from None
        except Exception as exc:
            hosted.failed = f"{hook} failed: {error_text(exc)}"
            self.log(hosted.name, hosted.failed)
        finally:
            self.clock.leave(previous)

    def maybe_finish(self, hosted: Hosted) -> None:
        """End an element in two steps: its outputs when its inputs have ended, then itself.

        When every push input has ended (and a source's generator is done),
        ``on_finish`` runs and the push outputs end; the elements it asks learn
        now that it has finished asking (fused ones at once, others from the
        master). It goes on answering queries until everyone who may ask it has
        finished asking too; only then is it finished. So a source that answers
        its own consumer's queries ends its stream first and is not kept waiting
        for a consumer that waits for that very end, and two elements that ask
        each other both finish.
        """
        if hosted.finished:
            return
        if not hosted.outputs_ended:
            if hosted.inputs_open():
                return
            hosted.outputs_ended = True
            self.call_hook(hosted, "on_finish")
            hosted.ctx.close()
            for out in hosted.ctx.ports.values():
                for link in out.links:
                    if isinstance(link, RemoteLink | ShardLink):
                        link.close()
                    else:
                        link.flush()
            self.final_snapshot(hosted)
            for out in hosted.ctx.ports.values():
                for link in out.links:
                    if isinstance(link, LocalLink):
                        self.end_arrived(link.conn_id)
            for conn in self.spec["connections"]:
                if conn["kind"] == "query" and conn["from"]["element"] == hosted.name:
                    target = self.hosted.get(conn["to"]["element"])
                    if target is not None:
                        target.open_queries.get(conn["to"]["port"], set()).discard(conn["id"])
                        self.maybe_finish(target)
        if not hosted.told_outputs_ended:  # also for an element restored as ended
            hosted.told_outputs_ended = True
            self.tell_outputs_ended(hosted)
        if hosted.queries_open() or hosted.finished:
            return
        hosted.finished = True
        self.wait_written()  # its final snapshot is on disk before the master relies on it
        self.send(
            "element_finished",
            element=hosted.name,
            failed=hosted.failed,
            stats=self.element_stats(hosted),
            final=hosted.final_file,
        )

    def tell_outputs_ended(self, hosted: Hosted) -> None:
        """Tell the master that ``hosted`` asks no more, when it asks elements of other
        processes: they may finish without waiting for it to finish. Its final
        snapshot is on disk first, and goes with the news: it stands for every later
        checkpoint, so a restore never runs again what it asked."""
        asks_others = any(
            c["kind"] == "query"
            and c["from"]["element"] == hosted.name
            and c["to"]["element"] not in self.hosted
            for c in self.spec["connections"]
        )
        if asks_others:
            self.wait_written()
            self.send("outputs_ended", element=hosted.name, final=hosted.final_file)

    # ---- running -----------------------------------------------------------
    def run_loop(self) -> None:
        sources = [h for h in self.hosted.values() if h.is_source]
        for hosted in self.hosted.values():
            self.maybe_finish(hosted)
        stopping = self.is_stopping
        while not all(h.finished for h in self.hosted.values()):
            if self.checkpoint_work:
                self.do_checkpoint_work()
            active = [h for h in sources if not h.source_done]
            self.sources_active = bool(active)
            if active:
                for hosted in active:
                    previous = self.clock.enter(hosted.handler.work)
                    try:
                        pump(hosted, self.batch_size, stopping, self.checkpoint_due)
                    finally:
                        self.clock.leave(previous)
                    if hosted.source_done:
                        self.maybe_finish(hosted)
                self.service(0)
            else:
                pending = any(link.buf for link in self.links)
                self.service(self.flush_interval if pending else 0.2)

    def is_stopping(self) -> bool:
        return self.stopping

    def checkpoint_due(self) -> bool:
        """A paced or waiting source ends its batch (and its wait) early so a checkpoint
        is not held up."""
        return self.pending_take() is not None

    def pending_take(self) -> int | None:
        takes = [checkpoint for kind, checkpoint in self.checkpoint_work if kind == "take"]
        return max(takes) if takes else None

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
            self.wait_written()  # snapshot 0 is on disk before the data flows
            self.send("started", sent={link.conn_id: link.sent for link in self.links})
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
        self.wait_written()
        self.send("finished", **self.snapshot())
        self.close(linger=True)
        return 0

    def close(self, linger: bool) -> None:
        self.dead.close()
        self.zctx.destroy(linger=None if linger else 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = orjson.loads(Path(argv[0]).read_bytes())
    # the care-taker's pid from the spec: getppid() would already name the
    # reaper if the care-taker died before this line
    watch_parent(int(spec.get("parent_pid") or os.getppid()))
    # Ctrl-C in a terminal reaches the whole process group; the master turns it
    # into an orderly stop, so element processes ignore it themselves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runtime = ProcessRuntime(spec)

    def on_term(*_: Any) -> None:
        if runtime.stopping:
            os._exit(EXIT_TERMINATED)  # asked twice: the element may be stuck in its own code
        runtime.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        return runtime.run()
    except SystemExit as exc:
        # an element's own code called sys.exit: its code must not be taken for
        # one of the runtime's (a start failure is not restarted)
        print(f"error: element code called sys.exit({exc.code!r})", file=sys.stderr, flush=True)
        os._exit(EXIT_ELEMENT_EXITED)
    except KeyboardInterrupt:
        # this process ignores SIGINT: only an element's own code raises it
        print("error: element code raised KeyboardInterrupt", file=sys.stderr, flush=True)
        os._exit(EXIT_ELEMENT_EXITED)
    except DatabloxError as exc:
        # the message names the element and port; a traceback would add nothing
        print(f"error: {exc}", file=sys.stderr, flush=True)
        who = exc.element if isinstance(exc, ElementError) and exc.element else "*"
        with contextlib.suppress(Exception):  # the counters as they stand, for the summary
            runtime.report_if_due(now_anyway=True)
        runtime.send("failed", element=who, error=str(exc), stage="run")
        runtime.close(linger=True)
        return EXIT_ELEMENT_ERROR


def leftover_threads() -> str:
    """The names of threads an element started and left running (they would keep the
    process alive after its elements have finished)."""
    return ", ".join(
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive() and not t.daemon
    )


def exit_now(code: int) -> NoReturn:
    """Exit with ``code``; without waiting for threads an element's code left running,
    which would keep the process alive after its elements have finished."""
    left = leftover_threads()
    if not left:
        sys.exit(code)
    if code == 0:
        print(
            f"note: threads an element started were still running at exit: {left}", file=sys.stderr
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def entry() -> NoReturn:
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    exit_now(code)


if __name__ == "__main__":
    entry()
