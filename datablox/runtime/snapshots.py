"""Checkpoints inside an element process: barriers, alignment, snapshots and restores.

The mechanism is the asynchronous barrier snapshot of Carbone et al. (2015):

- the master asks every process for checkpoint *N*; sources (and elements
  without push inputs) snapshot themselves between two batches and send a
  barrier *N* on every connection leaving them;
- an element with push inputs snapshots itself when barrier *N* has arrived
  on every input connection that has not ended. Until then, what arrives on a
  connection whose barrier is already in is held back (records, later
  barriers and ends alike), so the snapshot holds exactly the effect of the
  records before the barriers; then it forwards barrier *N* and goes on with
  what it held;
- each snapshot is pickled at once, then written atomically to the checkpoint
  store by a writer thread (the element goes on meanwhile) and acknowledged to
  the master once it is on disk; the master declares *N* complete once every
  element has acknowledged it.

A snapshot holds the element's own state (``Element.snapshot``) and the
runtime's part: logical counters, the sequence numbers of every connection
at the barrier, which inputs had ended, a source's position, and the length
of the element's dead-letter file. Restoring puts all of it back, so a
restored run continues the same sequence numbers and counts, and a gap or a
repeat on a connection is detected.

An element whose push outputs have ended takes one last (final) snapshot and
acknowledges every later checkpoint with it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from datablox.element import Element, Source
from datablox.errors import ElementError
from datablox.runtime.checkpoints import CheckpointStore, dumps, write_atomic
from datablox.runtime.handling import error_text
from datablox.runtime.links import LocalLink, RemoteLink
from datablox.runtime.shardlink import ShardLink, physical

if TYPE_CHECKING:
    from datablox.runtime.hosted import Hosted

#: Marks a held end-of-stream among held batches.
END = None


class Barrier:
    """A barrier held back behind an earlier one, with its connection's position then."""

    __slots__ = ("checkpoint", "position")

    def __init__(self, checkpoint: int, position: tuple[int, int]) -> None:
        self.checkpoint = checkpoint
        self.position = position


def defines(element: Element, hook: str) -> bool:
    """True when the element's class overrides ``hook`` of the base classes."""
    return getattr(type(element), hook) is not getattr(Element, hook)


class Checkpointing:
    """What an element process does for checkpoints; mixed into the process runtime."""

    hosted: dict[str, Hosted]
    expected_seq: dict[int, int]
    recv_counts: dict[int, int]
    store: CheckpointStore
    epoch: int

    def send(self, op: str, **fields: Any) -> None:
        raise NotImplementedError

    def log(self, element: str, message: str) -> None:
        raise NotImplementedError

    def connection_ended(self, conn_id: int) -> None:
        raise NotImplementedError

    def init_checkpointing(self) -> None:
        #: checkpoints asked for and not yet complete
        self.open_checkpoints: set[int] = set()
        #: checkpoint ops waiting for the main loop: ("take" | "done", id)
        self.checkpoint_work: list[tuple[str, int]] = []
        self.snapshot_seconds = 0.0
        #: (relative path or None, bytes, ack fields or None), written in order by the writer
        self._jobs: queue.Queue[tuple[str | None, bytes, dict[str, Any] | None]] = queue.Queue()
        #: acknowledgements whose snapshot is on disk, for the main loop to send
        self._written: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="datablox-snapshots")
        self._writer.daemon = True
        self._writer.start()

    # ---- the writer thread ---------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            rel, data, ack = self._jobs.get()
            try:
                if rel is not None:
                    write_atomic(self.store.root / rel, data)
                if ack is not None:
                    self._written.put(ack)
            except OSError as exc:
                # not acknowledged: the checkpoint never completes, the run keeps the last one
                print(f"cannot write snapshot {rel}: {exc}", flush=True)
            finally:
                self._jobs.task_done()

    def send_written(self) -> None:
        """Acknowledge the snapshots the writer has put on disk (main thread only)."""
        while not self._written.empty():
            self.send("snapshotted", **self._written.get_nowait())

    def wait_written(self) -> None:
        """Wait until every snapshot handed to the writer is on disk, and acknowledge them."""
        self._jobs.join()
        self.send_written()

    # ---- what arrives on an input connection ---------------------------------
    def records_arrived(self, hosted: Hosted, conn: int, port: str, records: list[Any]) -> None:
        if hosted.aligning is not None and conn in hosted.arrived:
            hosted.held.append((conn, port, records))
            return
        hosted.handler.batch(port, records)

    def barrier_arrived(
        self,
        hosted: Hosted,
        conn: int,
        checkpoint: int,
        position: tuple[int, int] | None = None,
    ) -> None:
        """Barrier ``checkpoint`` on ``conn``; ``position``: (expected seq, records received)
        on the connection when it arrived (now, unless it was held back)."""
        if position is None:
            position = (self.expected_seq.get(conn, 0), self.recv_counts.get(conn, 0))
        if hosted.aligning is not None and conn in hosted.arrived:
            hosted.held.append((conn, "", Barrier(checkpoint, position)))
            return
        if hosted.aligning is None:
            hosted.aligning = checkpoint
        hosted.arrived[conn] = position
        self.check_aligned(hosted)

    def end_arrived(self, conn: int) -> None:
        target = self.target_of(conn)
        if target is None:
            return
        if target.aligning is not None and conn in target.arrived:
            target.held.append((conn, "", END))
            return
        self.connection_ended(conn)
        self.check_aligned(target)

    def target_of(self, conn: int) -> Hosted | None:
        raise NotImplementedError

    def call_hook(self, hosted: Hosted, hook: str, *args: Any) -> None:
        raise NotImplementedError

    def check_aligned(self, hosted: Hosted) -> None:
        checkpoint = hosted.aligning
        if checkpoint is None:
            return
        for conns in hosted.open_inputs.values():
            for conn in conns:
                if conn not in hosted.arrived:
                    return
        self.take_snapshot(hosted, checkpoint)
        held = hosted.held
        hosted.aligning = None
        hosted.held = deque()
        hosted.arrived = {}
        while held:
            conn, port, item = held.popleft()
            if item is END:
                self.end_arrived(conn)
            elif isinstance(item, Barrier):
                self.barrier_arrived(hosted, conn, item.checkpoint, item.position)
            else:
                self.records_arrived(hosted, conn, port, item)

    # ---- taking snapshots ----------------------------------------------------
    def take_snapshot(self, hosted: Hosted, checkpoint: int) -> None:
        """Snapshot ``hosted`` for ``checkpoint``, pass the barrier on, acknowledge."""
        started = time.monotonic()
        hosted.ctx.flush()
        links = [link for out in hosted.ctx.ports.values() for link in out.links]
        for link in links:
            link.flush()
        state = self.runtime_state(hosted)
        for link in links:
            if isinstance(link, RemoteLink | LocalLink | ShardLink):
                link.barrier(checkpoint)
        self.write_and_ack(hosted, checkpoint, state, started)

    def runtime_state(self, hosted: Hosted) -> dict[str, Any]:
        ctx, handler = hosted.ctx, hosted.handler
        inputs: dict[int, tuple[int, int]] = {}
        for conns in hosted.open_inputs.values():
            for conn in conns:
                inputs[conn] = hosted.arrived.get(
                    conn, (self.expected_seq.get(conn, 0), self.recv_counts.get(conn, 0))
                )
        try:
            state = hosted.element.snapshot()
        except ElementError:
            raise
        except Exception as exc:
            raise ElementError(
                f"element '{hosted.name}': snapshot() failed: {error_text(exc)}"
            ) from None
        return {
            "state": state,
            "received": handler.received,
            "errors": handler.errors,
            "dead": ctx.dead_count,
            "dead_offset": self.dead_position(hosted.name),
            "emitted": {name: out.emitted for name, out in ctx.ports.items()},
            "links": {
                link.conn_id: (getattr(link, "seq", 0), link.sent)
                for out in ctx.ports.values()
                for link in physical(out.links)
            },
            "inputs": inputs,
            "ended": sorted(hosted.ended_inputs),
            "outputs_ended": hosted.outputs_ended,
            "position": (hosted.progress() or [None])[0],
        }

    def dead_position(self, element: str) -> int:
        raise NotImplementedError

    def write_and_ack(
        self, hosted: Hosted, checkpoint: int | str, state: dict[str, Any], started: float
    ) -> str:
        """Pickle ``state`` now; the writer puts it on disk, then it is acknowledged."""
        tag = checkpoint if isinstance(checkpoint, int) else f"{checkpoint}-{self.epoch}"
        path = self.store.snapshot_path(hosted.name, tag)
        rel = str(path.relative_to(self.store.root))
        try:
            data = dumps(state)
        except Exception as exc:  # only the element's own part can fail to pickle
            raise ElementError(
                f"element '{hosted.name}': snapshot() returned a state that cannot be "
                f"pickled: {type(exc).__name__}: {exc}"
            ) from None
        seconds = time.monotonic() - started
        self.snapshot_seconds += seconds
        ack = None
        if isinstance(checkpoint, int):
            hosted.acked = max(hosted.acked, checkpoint)
            ack = {
                "element": hosted.name,
                "checkpoint": checkpoint,
                "file": rel,
                "bytes": len(data),
                "seconds": seconds,
            }
        self._jobs.put((rel, data, ack))
        return rel

    def final_snapshot(self, hosted: Hosted) -> None:
        """The outputs of ``hosted`` ended: its last state stands for every later checkpoint."""
        started = time.monotonic()
        hosted.final_file = self.write_and_ack(hosted, "final", self.runtime_state(hosted), started)
        for checkpoint in sorted(self.open_checkpoints):
            self.ack_final(hosted, checkpoint)

    def ack_final(self, hosted: Hosted, checkpoint: int) -> None:
        if hosted.final_file is None or hosted.acked >= checkpoint:
            return
        hosted.acked = checkpoint
        ack = {
            "element": hosted.name,
            "checkpoint": checkpoint,
            "file": hosted.final_file,
            "bytes": 0,
            "seconds": 0.0,
        }
        # through the writer, in order: never before the final snapshot is on disk
        self._jobs.put((None, b"", ack))

    # ---- checkpoint ops from the master (run between batches) ----------------
    def on_checkpoint_op(self, msg: dict[str, Any]) -> None:
        self.checkpoint_work.append(("take", int(msg["checkpoint"])))

    def on_checkpoint_done_op(self, msg: dict[str, Any]) -> None:
        self.checkpoint_work.append(("done", int(msg["checkpoint"])))

    def do_checkpoint_work(self) -> None:
        work, self.checkpoint_work = self.checkpoint_work, []
        for what, checkpoint in work:
            if what == "take":
                self.open_checkpoints.add(checkpoint)
                for hosted in self.hosted.values():
                    if hosted.final_file is not None:
                        self.ack_final(hosted, checkpoint)
                    elif (
                        not hosted.outputs_ended
                        and not hosted.open_inputs_any()
                        and hosted.acked < checkpoint
                    ):
                        self.take_snapshot(hosted, checkpoint)
            else:
                self.open_checkpoints = {c for c in self.open_checkpoints if c > checkpoint}
                for hosted in self.hosted.values():
                    self.call_hook(hosted, "on_checkpoint", checkpoint)

    # ---- restoring -----------------------------------------------------------
    def restore_runtime(self, hosted: Hosted, snap: dict[str, Any]) -> None:
        """Put back the runtime's part of a snapshot (before the element's own state)."""
        ctx, handler = hosted.ctx, hosted.handler
        handler.received = snap["received"]
        handler.errors = snap["errors"]
        ctx.dead_count = snap["dead"]
        for name, n in snap["emitted"].items():
            if name in ctx.ports:
                ctx.ports[name].emitted = n
        links = {link.conn_id: link for out in ctx.ports.values() for link in physical(out.links)}
        for conn, (seq, sent) in snap["links"].items():
            link = links.get(int(conn))
            if link is None:
                continue
            if isinstance(link, RemoteLink):
                link.seq = seq
            link.sent = sent
        for conn, (seq, recv) in snap["inputs"].items():
            self.expected_seq[int(conn)] = seq
            self.recv_counts[int(conn)] = recv
        for conn in snap["ended"]:
            hosted.ended_inputs.add(conn)
            for conns in hosted.open_inputs.values():
                conns.discard(conn)
        if snap["outputs_ended"]:
            hosted.outputs_ended = True
            ctx.close()

    def restore_element(self, hosted: Hosted, snap: dict[str, Any], file: str) -> str | None:
        """Restore ``hosted``; for a source, returns why it cannot replay (None: it can)."""
        self.restore_runtime(hosted, snap)
        element = hosted.element
        if snap["state"] is not None:
            element.restore(snap["state"])
        if snap["outputs_ended"]:
            hosted.final_file = file
        if not isinstance(element, Source) or snap["position"] is None:
            return None
        if defines(element, "restore"):
            return None
        if element.resumable:
            hosted.skip = snap["position"]
            return None
        return "it does not declare resumable and defines no restore"
