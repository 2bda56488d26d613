"""The care-taker: one long-lived agent per node that runs element processes for masters.

It binds one CURVE-protected control socket that masters (and CLI clients)
connect to, and one socket, on the node's loopback, for its element processes.
It serves many runs at once (every run-level message names its run, and each
run has its own supervisor), relays each run's element messages to the master
that speaks for that run, samples load with psutil, heartbeats, and stops a
run's processes when that run's master has been silent for the run's lease
(so elements of a node cut off from its master stop before the master restores
them on other nodes).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from datablox import control
from datablox.caretaker.runs import NodeRun, files_named, inside, write_files
from datablox.caretaker.sampler import LoadSampler
from datablox.caretaker.supervisor import Supervisor, log_tail
from datablox.errors import DatabloxError
from datablox.security import Gate, KeyPair, serve_curve

log = logging.getLogger("datablox.caretaker")

#: Seconds between heartbeats to each master.
HEARTBEAT_EVERY = 0.5
#: Masters silent for longer than this get no more heartbeats.
MASTER_FORGOTTEN = 60.0
#: ZAP domains: masters and clients; element processes.
CONTROL, ELEMENTS = "control", "elements"


class CareTaker:
    """Serves masters from one node; in embedded mode it runs in a thread of the master."""

    def __init__(
        self,
        node: str,
        keys: KeyPair,
        allowed: set[bytes],
        bind: str = "127.0.0.1",
        port: int = 0,
        advertise: str | None = None,
        slots: int | None = None,
        cpus: int | None = None,
        root: Path | None = None,
        zctx: zmq.Context | None = None,  # type: ignore[type-arg]
        embedded: bool = False,
    ) -> None:
        if advertise is None and bind in ("0.0.0.0", "*", "::"):
            raise DatabloxError(
                f"care-taker '{node}' binds {bind}: other nodes need an address to reach it",
                "pass --advertise with this host's address on the nodes' network",
            )
        self.node = node
        #: runs in the master's process: uses the master's run folders, obeys shutdown
        self.embedded = embedded
        self.bind = "0.0.0.0" if bind == "*" else bind
        self.advertise = advertise or bind
        total = os.cpu_count() or 1
        self.cpus = min(cpus, total) if cpus else None
        self.slots = slots or self.cpus or total
        self.root = root or Path.home() / ".datablox" / "runs"
        self.zctx = zctx or zmq.Context.instance()
        self.gate = Gate(self.zctx, self._refused)
        self.gate.admit(CONTROL, allowed)
        self.keys = keys
        self.control = self.zctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 500)
        self.control.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # a master reconnecting with its identity takes its connection over
        self.control.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.control.setsockopt(zmq.SNDHWM, 100_000)
        serve_curve(self.control, keys, CONTROL)
        self.control.bind(f"tcp://{self.bind}:{port or '*'}")
        self.port = int(self.control.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        self.elements = self.zctx.socket(zmq.ROUTER)
        self.elements.setsockopt(zmq.LINGER, 0)
        serve_curve(self.elements, keys, ELEMENTS)
        self.elements.bind("tcp://127.0.0.1:*")
        self.element_endpoint = self.elements.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sampler = LoadSampler()
        self.node_figures: dict[str, Any] = self.sampler.node()
        self.runs: dict[str, NodeRun] = {}
        #: runs whose processes were stopped here for good (fenced or ended)
        self.closed: set[str] = set()
        self.masters: dict[bytes, float] = {}
        self.stop_event = threading.Event()
        self.beat_at = 0.0
        self.sampled_at = 0.0
        self.node_ops = {
            "hello": self._hello,
            "heartbeat": self._heartbeat,
            "status": self._status,
            "shutdown": self._shutdown,
        }
        self.run_ops = control.Dispatcher(
            {
                "launch": self._launch,
                "restore": self._restore,
                "spawn": self._spawn,
                "send": self._send,
                "kill": self._kill,
                "end": self._end,
                "fence": self._end,
            },
            f"care-taker '{node}'",
        )

    @property
    def endpoint(self) -> str:
        """Where masters reach this care-taker."""
        return f"tcp://{self.advertise}:{self.port}"

    def _refused(self, domain: str, address: str, key: str) -> None:
        who = "element process" if domain == ELEMENTS else "client"
        log.warning("refused a %s from %s: its key %s is not allowed", who, address, key)

    # ---- sending -----------------------------------------------------------------
    def to_master(
        self, master: bytes, msg: dict[str, Any], blobs: list[bytes] | None = None
    ) -> None:
        msg["node"] = self.node
        try:
            self.control.send_multipart(
                [master, control.encode(msg), *(blobs or [])], flags=zmq.NOBLOCK
            )
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                raise
            # that master is gone (or not reading): what it missed, a new master asks for

    def to_process(self, run: NodeRun, process: str, msg: dict[str, Any]) -> None:
        try:
            self.elements.send_multipart(
                [f"{run.run_id}|{process}".encode(), control.encode(msg)], flags=zmq.NOBLOCK
            )
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                raise

    # ---- node-level requests -------------------------------------------------------
    def _hello(self, master: bytes, msg: dict[str, Any]) -> None:
        for run_id in msg.get("runs", []):
            if run_id in self.runs:
                self.runs[run_id].master = master  # a master taking over its runs
        self.to_master(
            master,
            {
                "op": "hello",
                "slots": self.slots,
                "cores": self.cpus or os.cpu_count() or 1,
                "host": self.advertise,
                "pid": os.getpid(),
                "version": _version(),
                "runs": sorted(self.runs),
            },
        )

    def _heartbeat(self, master: bytes, msg: dict[str, Any]) -> None:
        """The master is there (``masters`` and each run's lease were updated on arrival)."""

    def _status(self, master: bytes, msg: dict[str, Any]) -> None:
        runs = {
            run.run_id: {
                "processes": {
                    name: {
                        "pid": child.popen.pid,
                        "elements": [e["name"] for e in child.spec.get("elements", [])],
                        **{k: run.loads.get(name, {}).get(k) for k in ("cpu", "rss")},
                        "load": run.loads.get(name, {}).get("elements", {}),
                    }
                    for name, child in run.supervisor.children.items()
                }
            }
            for run in self.runs.values()
        }
        self.to_master(
            master,
            {
                "op": "status",
                "reply_to": msg.get("id"),
                "host": self.advertise,
                "slots": self.slots,
                "cpus": self.cpus,
                "pid": os.getpid(),
                "version": _version(),
                "figures": self.node_figures,
                "runs": runs,
            },
        )

    def _shutdown(self, master: bytes, msg: dict[str, Any]) -> None:
        if not self.embedded:
            log.warning("refused a shutdown request: a deployed care-taker stops on SIGTERM")
            return
        for run in list(self.runs.values()):
            self.close_run(run)
        self.stop_event.set()

    # ---- run-level requests ----------------------------------------------------------
    def on_master(self, master: bytes, msg: dict[str, Any], blobs: list[bytes]) -> None:
        now = time.monotonic()
        self.masters[master] = now
        for run in self.runs.values():
            if run.master == master:
                run.last_master = run.heard = now
        handler = self.node_ops.get(msg["op"])
        if handler is not None:
            handler(master, msg)
            return
        run_id = str(msg.get("run", ""))
        if run_id in self.closed:
            if msg["op"] != "fence":
                log.info("ignored %s for run %s: it was stopped on this node", msg["op"], run_id)
                self.to_master(master, {"op": "fenced", "run": run_id})
            return
        found = self.runs.get(run_id)
        if found is None and msg["op"] not in ("launch", "restore", "spawn"):
            return  # a run this node has already forgotten (or never ran)
        run = found or self.open_run(master, msg)
        run.master = master
        run.last_master = run.heard = now
        if blobs:
            write_files(run.run_dir, msg.get("blobs", []), blobs)
        self.run_ops.dispatch(msg, run)

    def open_run(self, master: bytes, msg: dict[str, Any]) -> NodeRun:
        run_id = str(msg["run"])
        inside(self.root, run_id)  # a run id that would leave the root folder is refused
        # the master's own folder when it shares this node's disk (embedded), else ours
        shared = self.embedded and msg.get("run_dir")
        run_dir = Path(msg["run_dir"]) if shared else self.root / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        cpus = sorted(os.sched_getaffinity(0))[: self.cpus] if self.cpus else None
        element_keys = KeyPair.generate()
        self.gate.admit(ELEMENTS, [element_keys.public])
        run = NodeRun(
            run_id=run_id,
            master=master,
            run_dir=run_dir,
            supervisor=Supervisor(run_dir, cpus),
            element_keys=element_keys,
            lease=float(msg.get("lease", 0) or 0),
            ship=bool(msg.get("ship", False)),
            last_master=time.monotonic(),
        )
        self.runs[run_id] = run
        return run

    def close_run(self, run: NodeRun) -> None:
        run.supervisor.kill_all()
        self.gate.revoke(ELEMENTS, [run.element_keys.public])
        self.runs.pop(run.run_id, None)
        self.closed.add(run.run_id)

    def _launch(self, msg: dict[str, Any], run: NodeRun) -> None:
        for spec in msg["processes"]:
            self.start(run, spec)

    def _spawn(self, msg: dict[str, Any], run: NodeRun) -> None:
        """Start more processes for a running run (new shard members)."""
        for spec in msg["processes"]:
            self.start(run, spec)

    def _restore(self, msg: dict[str, Any], run: NodeRun) -> None:
        """Start the run's processes here again from a checkpoint (a new epoch).

        The run's processes still running here are killed first, without being
        reported: the master asked for it. The message lists the processes this
        node runs from now on, which may differ from before (shard members come
        and go; a lost node's processes move).
        """
        run.supervisor.kill_all()
        run.specs = []
        run.shipped.clear()  # a new epoch writes its final snapshots again
        for spec in msg["processes"]:
            self.start(run, {**spec, "epoch": msg["epoch"], "restore": msg["restore"]})

    def start(self, run: NodeRun, spec: dict[str, Any]) -> None:
        run.specs.append(spec)
        if spec.get("modules"):
            # the topology's own modules, shipped to this node's run folder
            spec = {
                **spec,
                "search_path": [str(run.run_dir / "modules" / m) for m in spec["modules"]],
            }
        try:
            run.supervisor.launch(
                {
                    **spec,
                    "ident": f"{run.run_id}|{spec['process']}",
                    "control": self.element_endpoint,
                    "control_keys": {
                        **run.element_keys.fields(),
                        "server": self.keys.public.decode(),
                    },
                    "run_dir": str(run.run_dir),
                    "host": self.bind,
                    "advertise": self.advertise,
                    "parent_pid": os.getpid(),
                }
            )
        except OSError as exc:
            # the master waits for every process it asked for: say this one never ran
            log.error("could not start process %s: %s", spec["process"], exc)
            self.to_master(
                run.master,
                {
                    "op": "exited",
                    "run": run.run_id,
                    "process": spec["process"],
                    "code": -1,
                    "kind": "start_failed",
                    "error": f"the care-taker could not start its process: {exc}",
                    "epoch": spec.get("epoch", 0),
                },
            )

    def _send(self, msg: dict[str, Any], run: NodeRun) -> None:
        self.to_process(run, msg["process"], msg["msg"])

    def _kill(self, msg: dict[str, Any], run: NodeRun) -> None:
        # the exits are reaped and reported one by one as "killed"
        run.supervisor.signal_all(signal.SIGKILL)

    def _end(self, msg: dict[str, Any], run: NodeRun) -> None:
        """The run is over on this node (``end``), or it runs elsewhere now (``fence``)."""
        self.close_run(run)
        if msg["op"] == "fence":
            log.warning("run %s: fenced by its master; its processes here are stopped", run.run_id)

    # ---- element process → care-taker → master -------------------------------------
    def on_element(self, ident: str, msg: dict[str, Any]) -> None:
        run_id, _, process = ident.rpartition("|")
        run = self.runs.get(run_id)
        if run is None:
            return  # a process of a run stopped here; it is being killed
        child = run.supervisor.children.get(process)
        op = msg["op"]
        if child is not None:
            if op == "ready":
                child.endpoints = msg.get("endpoints", {})
            elif op in ("load", "finished"):
                msg.update(self.sampler.sample(child.popen.pid))
                run.loads[process] = msg
        blobs: list[bytes] = []
        if run.ship:
            names = [n for n in files_named(msg) if n not in run.shipped]
            for name in names:
                blobs.append(inside(run.checkpoints, name).read_bytes())
            run.shipped.update(names)
            if names:
                # named relative to the run folder, as the master's files are
                msg["blobs"] = [f"checkpoints/{name}" for name in names]
        msg["process"] = process
        msg["run"] = run_id
        self.to_master(run.master, msg, blobs)

    def check_children(self) -> None:
        for run in list(self.runs.values()):
            for ex in run.supervisor.reap():
                child = ex.child
                self.sampler.forget(child.popen.pid)
                # the master decides what follows a crash (a restore of the whole run)
                self.to_master(
                    run.master,
                    {
                        "op": "exited",
                        "run": run.run_id,
                        "process": child.name,
                        "code": ex.code,
                        "kind": ex.kind,
                        "log": log_tail(child.log_path),
                        "epoch": child.spec.get("epoch", 0),
                    },
                )

    def check_leases(self, now: float) -> None:
        """Kill the processes of runs whose master has been silent for their lease.

        They are reported as crashed (a master that is only slow restores them);
        the run itself stays known here, so the master can restore it on this node.
        A master that has declared this node lost never will: it fences it.
        """
        for run in list(self.runs.values()):
            if not run.supervisor.children and now - run.heard > MASTER_FORGOTTEN:
                self.close_run(run)  # its master is gone for good: forget the run
                continue
            if not run.lease or now - run.last_master <= run.lease:
                continue
            if run.supervisor.children:
                log.warning(
                    "run %s: no word from its master for %.1f s; its processes here are "
                    "stopped (the master restores them, here or on other nodes)",
                    run.run_id,
                    now - run.last_master,
                )
                for child in run.supervisor.children.values():
                    try:
                        os.killpg(child.popen.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            run.last_master = now

    def beat(self, now: float) -> None:
        """Heartbeats (with the node's load, sampled once a second) to every recent master."""
        if now - self.beat_at < HEARTBEAT_EVERY:
            return
        self.beat_at = now
        if now - self.sampled_at >= 1.0:
            self.sampled_at = now
            self.node_figures = self.sampler.node()
        for master, seen in list(self.masters.items()):
            if now - seen > MASTER_FORGOTTEN:
                del self.masters[master]
                continue
            self.to_master(master, {"op": "heartbeat", "pid": os.getpid(), **self.node_figures})

    def serve(self) -> None:
        """Run until a ``shutdown`` request or ``stop_event``."""
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.elements, zmq.POLLIN)
        try:
            while not self.stop_event.is_set():
                for sock, _ in poller.poll(100):
                    if sock is self.control:
                        master, data, *blobs = self.control.recv_multipart()
                        try:
                            self.on_master(master, control.decode(data), blobs)
                        except Exception as exc:  # one bad request must not stop every run
                            log.error("a request from a master failed: %s", exc)
                    else:
                        ident, data = self.elements.recv_multipart()
                        try:
                            self.on_element(ident.decode(), control.decode(data))
                        except Exception as exc:
                            log.error("a message from element process %s failed: %s", ident, exc)
                now = time.monotonic()
                self.check_children()
                self.check_leases(now)
                self.beat(now)
        finally:
            for run in list(self.runs.values()):
                run.supervisor.kill_all()
            self.control.close()
            self.elements.close()
            self.gate.stop()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("datablox")
    except PackageNotFoundError:
        return "unknown"
