"""The care-taker agent: one per node; runs element processes for the master.

It talks to the master over one DEALER socket and to its element processes
over one ROUTER socket, relaying control messages both ways, adding psutil
figures to load reports, and restarting processes that crash.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from datablox import control
from datablox.caretaker.sampler import LoadSampler
from datablox.caretaker.supervisor import Child, Supervisor, log_tail


class CareTaker:
    """Serves one master; in embedded mode it runs in a thread of the master process."""

    def __init__(
        self,
        master: str,
        node: str = "local",
        host: str = "127.0.0.1",
        slots: int | None = None,
        root: Path | None = None,
        zctx: zmq.Context | None = None,  # type: ignore[type-arg]
    ) -> None:
        self.node = node
        self.host = host
        self.slots = slots or os.cpu_count() or 1
        self.root = root or Path.home() / ".datablox" / "runs"
        self.zctx = zctx or zmq.Context.instance()
        self.master = self.zctx.socket(zmq.DEALER)
        self.master.setsockopt(zmq.IDENTITY, node.encode())
        self.master.setsockopt(zmq.LINGER, 1000)
        self.master.connect(master)
        self.elements = self.zctx.socket(zmq.ROUTER)
        self.elements.setsockopt(zmq.LINGER, 0)
        self.elements.bind(f"tcp://{host}:*")
        self.element_endpoint = self.elements.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sampler = LoadSampler()
        self.supervisor: Supervisor | None = None
        #: the specs of the run's processes as launched (relaunched on a restore)
        self.specs: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.node_reported = time.monotonic()
        self.run_dir: Path | None = None
        self.from_master = control.Dispatcher(
            {
                "launch": self._launch,
                "spawn": self._spawn,
                "restore": self._restore,
                "send": self._send,
                "kill": self._kill,
                "shutdown": self._shutdown,
            },
            f"care-taker '{node}'",
        )
        relay = self._relay
        self.from_elements = control.Dispatcher(
            {
                "ready": self._ready,
                "load": self._load,
                "finished": self._finished,
                "started": relay,
                "failed": relay,
                "log": relay,
                "element_finished": relay,
                "snapshotted": relay,
                "not_replayable": relay,
                "problem": relay,
                "shard_paused": relay,
                "moved_out": relay,
                "moved_in": relay,
            },
            f"care-taker '{node}'",
        )

    def to_master(self, op: str, **fields: Any) -> None:
        self.master.send(control.encode({"op": op, "node": self.node, **fields}))

    def to_process(self, process: str, msg: dict[str, Any]) -> None:
        self.elements.send_multipart([process.encode(), control.encode(msg)])

    # ---- master → care-taker ---------------------------------------------
    def on_master(self, msg: dict[str, Any]) -> None:
        self.from_master.dispatch(msg)

    def _launch(self, msg: dict[str, Any]) -> None:
        self.run_dir = Path(msg.get("run_dir") or self.root / msg["run_id"])
        self.supervisor = Supervisor(self.run_dir)
        self.specs = list(msg["processes"])
        for spec in self.specs:
            self.supervisor.launch(self.complete(spec))

    def _spawn(self, msg: dict[str, Any]) -> None:
        """Start more processes for the running run (new shard members)."""
        if self.supervisor is None:
            return
        for spec in msg["processes"]:
            self.specs.append(spec)
            self.supervisor.launch(self.complete(spec))

    def _restore(self, msg: dict[str, Any]) -> None:
        """Start the run's processes again from a checkpoint (a new epoch).

        The processes still running are killed first, without being reported:
        the master asked for it. Each new process restores its elements from
        the snapshots the message names and continues from there. The message
        lists the processes (and their specs) as of that checkpoint: shard
        members may have come or gone since.
        """
        if self.supervisor is None:
            return
        self.supervisor.kill_all()
        self.specs = list(msg.get("processes", self.specs))
        for spec in self.specs:
            self.supervisor.launch(
                self.complete({**spec, "epoch": msg["epoch"], "restore": msg["restore"]})
            )

    def _send(self, msg: dict[str, Any]) -> None:
        self.to_process(msg["process"], msg["msg"])

    def _kill(self, msg: dict[str, Any]) -> None:
        # the exits are reaped and reported one by one as "killed"
        if self.supervisor is not None:
            self.supervisor.signal_all(signal.SIGKILL)

    def _shutdown(self, msg: dict[str, Any]) -> None:
        if self.supervisor is not None:
            self.supervisor.kill_all()
        self.stop_event.set()

    def complete(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.run_dir is not None
        return {
            **spec,
            "control": self.element_endpoint,
            "run_dir": str(self.run_dir),
            "host": self.host,
            "parent_pid": os.getpid(),
        }

    # ---- element process → care-taker → master -----------------------------
    def on_element(self, process: str, msg: dict[str, Any]) -> None:
        child = self.supervisor.children.get(process) if self.supervisor else None
        if child is not None:
            self.from_elements.dispatch(msg, child)
        msg["process"] = process
        msg["node"] = self.node
        self.master.send(control.encode(msg))

    def _ready(self, msg: dict[str, Any], child: Child) -> None:
        child.endpoints = msg.get("endpoints", {})

    def _load(self, msg: dict[str, Any], child: Child) -> None:
        msg.update(self.sampler.sample(child.popen.pid))

    def _finished(self, msg: dict[str, Any], child: Child) -> None:
        self._load(msg, child)

    def _relay(self, msg: dict[str, Any], child: Child) -> None:
        """Messages the care-taker only passes on to the master."""

    def check_children(self) -> None:
        if self.supervisor is None:
            return
        for ex in self.supervisor.reap():
            child = ex.child
            self.sampler.forget(child.popen.pid)
            # the master decides what follows a crash (a restore of the whole run)
            self.to_master(
                "exited",
                process=child.name,
                code=ex.code,
                kind=ex.kind,
                log=log_tail(child.log_path),
                epoch=child.spec.get("epoch", 0),
            )

    def report_node(self) -> None:
        """The node's CPU use, once a second (the shards' scaling budget)."""
        now = time.monotonic()
        if now - self.node_reported < 1.0:
            return
        self.node_reported = now
        self.to_master("node_load", **self.sampler.node())

    def serve(self) -> None:
        """Run until the master says ``shutdown`` or ``stop_event`` is set."""
        self.to_master("hello", slots=self.slots, host=self.host, pid=os.getpid())
        poller = zmq.Poller()
        poller.register(self.master, zmq.POLLIN)
        poller.register(self.elements, zmq.POLLIN)
        try:
            while not self.stop_event.is_set():
                for sock, _ in poller.poll(100):
                    if sock is self.master:
                        self.on_master(control.decode(self.master.recv()))
                    else:
                        ident, data = self.elements.recv_multipart()
                        self.on_element(ident.decode(), control.decode(data))
                self.check_children()
                self.report_node()
        finally:
            if self.supervisor is not None:
                self.supervisor.kill_all()
            self.master.close()
            self.elements.close()
