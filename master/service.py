"""The master service: plans a topology, drives care-takers through start-up, watches the run."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from datablox import control
from datablox.caretaker.runs import module_files, package_files, write_files
from datablox.errors import RunError
from datablox.master.checkpointing import Coordinator
from datablox.master.classinfo import cheap_classes, min_members
from datablox.master.cluster import Cluster
from datablox.master.ending import RunEnding
from datablox.master.nodeloss import NodeWatch
from datablox.master.planner import NodeInfo, Plan, over_process_limit, plan
from datablox.master.reshard import forced_actions
from datablox.master.runfolder import RunFolder
from datablox.master.runopts import RunOptions, RunResult
from datablox.master.shardreport import shard_lines, shard_summary
from datablox.master.shardrun import ShardController
from datablox.master.state import Command, RunState
from datablox.runtime.checkpoints import CheckpointStore
from datablox.security import KeyPair
from datablox.shards.layout import Layout

#: A care-taker stops a run's processes after this share of the heartbeat timeout
#: without a word from the master: before the master restores them elsewhere.
LEASE_SHARE = 0.6


class Display(Protocol):
    def start(self, state: RunState) -> None: ...
    def update(self, state: RunState, elapsed: float) -> None: ...
    def log(self, text: str) -> None: ...
    def stop(self) -> None: ...


class Run(NodeWatch, RunEnding):
    """One topology run on the master's nodes, from launch to the last exit."""

    def __init__(
        self,
        master: Cluster,
        tradecraft: dict[str, Any],
        options: RunOptions,
        display: Display,
        interrupted: Callable[[], int],
        shared: bool = True,
    ) -> None:
        self.master = master
        #: the care-takers share this machine's disk (embedded): no files travel
        self.shared = shared
        self.options = options
        self.display = display
        self.interrupted = interrupted
        nodes = list(master.nodes.values())
        if options.slots:
            nodes = [NodeInfo(n.name, options.slots, n.cores) for n in nodes]
        limit_given = options.max_processes is not None
        if options.max_processes is None:
            options.max_processes = max(16, 4 * (os.cpu_count() or 1))
        # shards run as members: the runtime's topology has x#1, x#2, ... in place of x
        self.layout = Layout(tradecraft, min_members(tradecraft))
        actions = forced_actions(self.layout, options.reshard)  # before any file is touched
        physical = self.layout.tradecraft()
        load = {
            link.name: float(link.figures.get("cpu_used", 0.0))
            for link in master.links
            if link.info is not None
        }
        self.plan: Plan = plan(
            physical, nodes, options.fusion, cheap_classes(physical), embedded=shared, load=load
        )
        over = over_process_limit(self.plan, options.max_processes) if limit_given else None
        if over is not None:
            raise RunError(over, "fuse chains (--fusion auto or max), or allow more processes")
        self.state = RunState(physical, self.plan)
        run_id = (
            f"{tradecraft.get('name', 'run')}-{time.strftime('%Y%m%d-%H%M%S')}-"
            f"{uuid.uuid4().hex[:12]}"
        )
        self.run_dir = (options.run_dir or Path(".datablox") / "runs" / run_id).resolve()
        self.folder = RunFolder.take(self.run_dir, self.state.elements)
        self.run_id = run_id
        #: incarnation of the run; each restore from a checkpoint starts a new one and
        #: messages from processes of an earlier one are ignored
        self.epoch = 0
        self.checkpoints = Coordinator(frozenset(self.state.elements), options.snapshot_every)
        self.shards = ShardController(self, self.layout, actions, options.autoscale)
        self.store = CheckpointStore(self.run_dir)
        #: the data plane's CURVE key pair (one per run), when it is encrypted
        self.data_keys = KeyPair.generate() if options.encrypt_data else None
        #: the topology's own modules, sent to care-takers that do not share this disk
        folders = [*physical.get("search_path", []), *(f for f in options.ship if Path(f).is_dir())]
        packages = [n for n in options.ship if not Path(n).is_dir()]
        self.module_folders = len(folders) + (1 if packages else 0)
        self.modules = (
            {} if shared else {**module_files(folders), **package_files(packages, len(folders))}
        )
        self.crashed_at: float | None = None
        #: when the last node loss was declared, and the nodes lost and fenced
        self.lost_at: float | None = None
        self.lost_nodes: list[str] = []
        self.fenced: set[str] = set()
        #: seconds from a crash being noticed to the data flowing again, per restore
        self.recoveries: list[float] = []
        self.phase = "starting"
        #: the dead letters passed --max-dead-letters (the run was stopped for it)
        self.too_many_dead = False
        self.go_at: float | None = None
        self.kill_sent = False
        self.reports_due: float | None = None
        #: processes whose start failure they reported themselves
        self.failed_to_start: set[str] = set()
        #: processes whose element stopped on an error, and which element said so
        self.failed_elements: dict[str, str] = {}
        #: processes whose start failed in a restore, and why (their exit is a crash)
        self.failed_restores: dict[str, str] = {}
        #: why the run must stop now (an element failed while the data flowed)
        self.failing: str | None = None
        #: processes that exited cleanly, and when, whose final report has not come yet
        self.unreported_since: dict[str, float] = {}
        self.dispatcher = control.Dispatcher(
            {
                "hello": self._on_hello,
                "ready": self._on_ready,
                "started": self._on_started,
                "failed": self._on_failed,
                "load": self._on_load,
                "finished": self._on_finished,
                "log": self._on_log,
                "warning": self._on_warning,
                "element_finished": self._on_element_finished,
                "outputs_ended": self._on_outputs_ended,
                "exited": self._on_exited,
                "snapshotted": self._on_snapshotted,
                "not_replayable": self._on_not_replayable,
                "problem": self._on_problem,
                "shard_paused": self._on_shard,
                "moved_out": self._on_shard,
                "moved_in": self._on_shard,
                "rewired": self._on_shard,
                "heartbeat": self._on_heartbeat,
                "fenced": self._on_fenced,
            },
            "the master",
        )

    def notices(self) -> list[str]:
        """What the user should know before the data flows."""
        found = list(self.plan.notices)
        for feed in self.state.tradecraft.get("feeds", []):
            found.append(
                f"feed '{feed['name']}' ({feed['element']}.{feed['port']}): a one-shot run has "
                "no feed subscribers; its records are counted in the table but not kept"
            )
        return found

    def send_node(self, node: str, msg: dict[str, Any], blobs: list[bytes] | None = None) -> None:
        self.master.send_node(node, {**msg, "run": self.run_id}, blobs)

    def to_process(self, process: str, msg: dict[str, Any]) -> None:
        node = self.state.processes[process].node
        names: list[str] = []
        if msg["op"] == "move_in" and not self.shared:
            # a partition hand-over between members on different nodes travels through here
            names = [f"checkpoints/{rel}" for rel in msg["files"]]
        self.send_node(
            node,
            {"op": "send", "process": process, "msg": msg, "blobs": names},
            self.read_files(names),
        )

    def read_files(self, names: list[str]) -> list[bytes]:
        return [(self.run_dir / name).read_bytes() for name in names]

    def process_spec(self, process: str) -> dict[str, Any]:
        """What one element process is started with."""
        o = self.options
        spec = self.state.spec_for(process)
        spec.update(
            batch_size=o.batch_size,
            flush_ms=o.flush_ms,
            hwm=o.hwm,
            codec=o.codec,
            startup_timeout=o.startup_timeout,
            epoch=self.epoch,
            routing=self.layout.routing(),
        )
        if self.data_keys is not None:
            spec["data_keys"] = self.data_keys.fields()
        if not self.shared:
            # the care-taker puts the shipped modules on the import path instead
            spec.pop("search_path", None)
            spec["modules"] = [str(i) for i in range(self.module_folders)]
        return spec

    def start_message(self, op: str, specs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        """``launch``, ``restore`` or ``spawn``: how a node runs this run's processes."""
        msg: dict[str, Any] = {
            "op": op,
            "processes": specs,
            "lease": self.options.heartbeat_timeout * LEASE_SHARE,
            "ship": not self.shared,
            **fields,
        }
        if self.shared:
            msg["run_dir"] = str(self.run_dir)
        return msg

    def module_blobs(self) -> tuple[list[str], list[bytes]]:
        names = [f"modules/{rel}" for rel in self.modules]
        return names, [path.read_bytes() for path in self.modules.values()]

    def launch(self) -> None:
        by_node: dict[str, list[dict[str, Any]]] = {}
        for proc in self.plan.processes:
            by_node.setdefault(proc.node, []).append(self.process_spec(proc.name))
        names, blobs = self.module_blobs()
        for node, specs in by_node.items():
            self.send_node(node, {**self.start_message("launch", specs), "blobs": names}, blobs)

    def kill(self) -> None:
        if not self.kill_sent:
            self.kill_sent = True
            for node in {p.node for p in self.state.processes.values()}:
                self.send_node(node, {"op": "kill"})

    def end(self) -> None:
        """The run is over: every node drops it (and kills what is left of it)."""
        for node in self.master.nodes:
            self.send_node(node, {"op": "end"})

    def stop(self) -> None:
        self.state.stopping = True
        for proc in self.state.processes.values():
            if not proc.exited:
                self.to_process(proc.name, {"op": "stop"})

    # ---- control messages from care-takers and element processes ---------------
    def handle(self, msg: dict[str, Any]) -> None:
        if msg.get("run", self.run_id) != self.run_id:
            return  # about another run on the same care-taker
        if msg.get("lost"):
            if msg["node"] not in self.fenced:
                self.fence(msg["node"])
            return  # nothing a node declared lost says counts
        if msg.get("epoch", self.epoch) != self.epoch:
            return  # from a process of an incarnation a restore has replaced
        if msg.get("blob_data"):
            data = msg.pop("blob_data")
            write_files(self.run_dir, list(data), list(data.values()))
        commands = self.dispatcher.dispatch(msg, msg.get("process", "")) or []
        for target, command in commands:
            if not self.state.processes[target].exited:
                self.to_process(target, command)
        if self.shards.busy():
            self.shards.step()

    def _on_shard(self, msg: dict[str, Any], process: str) -> None:
        self.shards.on_message(msg, process)

    def _on_hello(self, msg: dict[str, Any], process: str) -> None:
        """A care-taker (re)connected; the master has recorded it."""

    def _on_heartbeat(self, msg: dict[str, Any], process: str) -> None:
        # the node's load, for the scaling policy's CPU budget
        self.shards.on_message({**msg, "op": "node_load"}, process)

    def _on_fenced(self, msg: dict[str, Any], process: str) -> None:
        """A node says the run is stopped there (an answer to a late message)."""

    def _on_ready(self, msg: dict[str, Any], process: str) -> None:
        st = self.state
        st.on_ready(process, msg.get("endpoints", {}), msg.get("pid"))
        if self.phase == "running" and self.shards.wiring.on_ready(process):
            return
        if self.phase in ("starting", "recovering") and st.all_ready():
            for name, proc in st.processes.items():
                if not proc.exited:
                    self.to_process(name, st.wire_message(name))

    def _on_started(self, msg: dict[str, Any], process: str) -> None:
        st = self.state
        st.processes[process].started = True
        st.on_started(process, msg.get("sent", {}))
        if self.phase in ("starting", "recovering") and st.all_started():
            now = time.monotonic()
            if self.phase == "starting":
                self.go_at = now
            elif self.crashed_at is not None:
                self.recoveries.append(now - self.crashed_at)
            self.phase = "running"
            self.checkpoints.start(now)
            for name, proc in st.processes.items():
                if not proc.exited:
                    proc.last_load = now  # silent from here on when no report comes
                    self.go(name)
        elif self.phase == "running":
            st.processes[process].last_load = time.monotonic()
            if not self.shards.wiring.hold_go(process):
                self.go(process)

    def go(self, process: str) -> None:
        """Let a started process go (and stop at once if the run is stopping)."""
        self.to_process(process, {"op": "go"})
        if self.state.stopping:
            self.to_process(process, {"op": "stop"})

    def _on_failed(self, msg: dict[str, Any], process: str) -> None:
        st = self.state
        who = msg.get("element")
        who = f"element '{who}'" if who and who != "*" else f"process {process}"
        if msg.get("stage") == "run":
            # the run has failed: once the process has exited (and its senders know to
            # discard what they hold for it), the run stops
            elements = ", ".join(st.processes[process].elements)
            # the error names the element (and port) itself
            st.problems.append(f"process {process} ({elements}) stopped: {msg['error']}")
            self.failed_elements[process] = who
        elif self.phase == "recovering":
            # a restore's start may fail for a passing reason (a service still down): the
            # exit that follows counts as a crash, restored again up to --max-restarts
            self.failed_restores[process] = f"{who} could not start again: {msg['error']}"
        else:
            st.problems.append(f"{who} could not start: {msg['error']}")
            self.failed_to_start.add(process)
            self.kill()

    def _on_load(self, msg: dict[str, Any], process: str) -> None:
        self.state.on_load(process, msg, time.monotonic())

    def _on_finished(self, msg: dict[str, Any], process: str) -> None:
        self.state.on_final_report(process, msg, time.monotonic())
        self.shards.wiring.on_gone(process)  # it reads no more control messages

    def _on_log(self, msg: dict[str, Any], process: str) -> None:
        self.display.log(f"{msg.get('element')}: {msg.get('message')}")

    def _on_warning(self, msg: dict[str, Any], process: str) -> None:
        text = str(msg.get("text"))
        if text not in self.state.warnings:  # a restarted process says it again
            self.state.warnings.append(text)
            self.display.log(f"warning: {text}")

    def _on_element_finished(self, msg: dict[str, Any], process: str) -> list[Command]:
        now = time.monotonic()
        view = self.state.elements.get(msg["element"])
        if view is not None:
            view.finished_after = now - (self.go_at or now)
        if msg.get("final") and self.checkpoints.on_final(msg["element"], msg["final"], now):
            self.completed(self.checkpoints.completed)
        return self.state.on_element_finished(
            msg["element"], msg.get("failed"), msg.get("stats", {})
        )

    def _on_outputs_ended(self, msg: dict[str, Any], process: str) -> list[Command]:
        """An element asks no more; its final snapshot stands for every later checkpoint."""
        now = time.monotonic()
        if msg.get("final") and self.checkpoints.on_final(msg["element"], msg["final"], now):
            self.completed(self.checkpoints.completed)
        return self.state.on_outputs_ended(msg["element"])

    def _on_snapshotted(self, msg: dict[str, Any], process: str) -> None:
        checkpoint = int(msg["checkpoint"])
        now = time.monotonic()
        done = self.checkpoints.on_ack(
            msg["element"], checkpoint, msg["file"], int(msg.get("bytes", 0)), now
        )
        if done:
            self.completed(checkpoint)

    def completed(self, checkpoint: int) -> None:
        """Checkpoint ``checkpoint`` has every snapshot: record it, tell every process."""
        files = self.checkpoints.files
        self.shards.on_completed(checkpoint)
        self.store.complete(checkpoint, files)
        self.store.prune(files)
        for name, proc in self.state.processes.items():
            if not proc.exited:
                self.to_process(name, {"op": "checkpoint_done", "checkpoint": checkpoint})

    def _on_not_replayable(self, msg: dict[str, Any], process: str) -> None:
        element = msg["element"]
        view = self.state.elements[element]
        reported = (view.stats.get("progress") or [0])[0] or 0
        lost = max(0, int(reported) - int(msg.get("position") or 0))
        how_many = f"at least {lost:,} by its last report" if lost else "how many is not known"
        self.state.problems.append(
            f"source '{element}' cannot replay ({msg.get('reason')}): the records it had "
            f"emitted after checkpoint {msg.get('checkpoint')} are lost ({how_many}); "
            "its delivery is at-most-once"
        )

    def _on_problem(self, msg: dict[str, Any], process: str) -> None:
        self.state.problems.append(str(msg.get("text")))

    def restore(self, why: str) -> None:
        """Start every element again from the newest completed checkpoint (a new epoch)."""
        st = self.state
        now = time.monotonic()
        self.crashed_at = now
        self.epoch += 1
        self.failed_restores.clear()
        checkpoint, files = self.checkpoints.restore(now)
        self.shards.on_restore(checkpoint)
        live = {st.process_of[e] for e in self.shards.live_elements()}
        st.on_restore(live)
        self.phase = "recovering"
        self.display.log(f"{why}; restoring every element from checkpoint {checkpoint}")
        restore = {"checkpoint": checkpoint, "files": files}
        by_node: dict[str, list[dict[str, Any]]] = {n: [] for n in self.master.nodes}
        for name in sorted(live):
            by_node[st.processes[name].node].append(self.process_spec(name))
        for node, specs in by_node.items():
            names: list[str] = []
            if not self.shared:
                # the node may not have these snapshots (it ran other elements, or none)
                elements = {e for spec in specs for e in st.processes[spec["process"]].elements}
                names, _ = self.module_blobs()
                names += [f"checkpoints/{files[e]}" for e in sorted(elements) if e in files]
            message = self.start_message(
                "restore", specs, epoch=self.epoch, restore=restore, blobs=names
            )
            self.send_node(node, message, self.read_node_files(names))

    def read_node_files(self, names: list[str]) -> list[bytes]:
        return [
            self.modules[n.removeprefix("modules/")].read_bytes()
            if n.startswith("modules/")
            else (self.run_dir / n).read_bytes()
            for n in names
        ]

    def _on_exited(self, msg: dict[str, Any], process: str) -> list[Command]:
        st = self.state
        kind, code = msg["kind"], int(msg["code"])
        if kind != "finished":
            # what it did not answer, it never will. (A clean exit may overtake the
            # process's last messages: its final report settles what is open then.)
            self.shards.wiring.on_gone(process)
        if kind == "finished" and not st.processes[process].reported:
            self.unreported_since[process] = time.monotonic()
        if kind == "crashed" and self.phase == "starting":
            kind = "start_failed"  # it never started: say so, and fail now
        failed_restore = self.failed_restores.pop(process, None)
        if kind == "start_failed" and self.phase == "recovering":
            kind = "crashed"  # its message saying why may come after its exit
        if (
            kind == "crashed"
            and self.phase in ("running", "recovering")
            and not st.stopping
            and not self.kill_sent
            and self.checkpoints.restorable()
        ):
            if st.processes[process].restarts < self.options.max_restarts:
                st.processes[process].restarts += 1
                elements = ", ".join(st.processes[process].elements)
                how = (
                    failed_restore
                    or msg.get("error")
                    or f"process {process} ({elements}) died with exit code {code}"
                )
                self.restore(
                    f"{how} (restart {st.processes[process].restarts}/{self.options.max_restarts})"
                )
                return []
            kind = "gave_up"
            self.kill()
        commands = st.on_exit(process, kind, code, failed_restore or msg.get("log", ""))
        if kind not in ("finished", "killed"):
            self.display.log(f"process {process} {kind.replace('_', ' ')} (exit code {code})")
            hosted = st.processes[process].elements
            who = self.failed_elements.get(process) or (
                f"element '{hosted[0]}'"
                if len(hosted) == 1
                else f"process {process} ({', '.join(hosted)})"
            )
            self.fail_now(f"{who} failed ({kind.replace('_', ' ')})")
        if self.phase in ("starting", "recovering") and kind != "killed":
            # the topology cannot start without it: fail now, not at the timeout
            if process not in self.failed_to_start and kind == "start_failed":
                elements = ", ".join(f"'{e}'" for e in st.processes[process].elements)
                tail = msg.get("log", "").strip()
                st.problems.append(
                    f"element {elements} could not start: {msg['error']}"
                    if msg.get("error")
                    else f"element {elements} could not start: its process ended with exit "
                    f"code {code} during start-up" + (f"; its log ends:\n{tail}" if tail else "")
                )
            self.kill()
        return commands

    def execute(self) -> RunResult:
        try:
            return self._execute()
        finally:
            self.folder.release()

    def _execute(self) -> RunResult:
        started = time.monotonic()
        self.launch()
        self.display.start(self.state)
        for notice in self.notices():
            self.display.log(notice)
        last_draw = 0.0
        try:
            while not self.state.done():
                if self.final_reports_overdue():
                    break
                self.on_interrupts(self.interrupted(), time.monotonic())
                if (
                    self.stop_at is not None
                    and not self.kill_sent
                    and time.monotonic() - self.stop_at > self.options.drain_timeout
                ):
                    self.drain_overdue()
                if (
                    self.phase == "starting"
                    and not self.kill_sent
                    and time.monotonic() - started > self.options.startup_timeout
                ):
                    self.state.problems.append(
                        f"the topology did not start within {self.options.startup_timeout:.0f} s"
                    )
                    self.kill()
                msg = self.master.recv(100)
                while msg is not None:
                    self.handle(msg)
                    msg = self.master.recv(0)
                now = time.monotonic()
                self.watch_nodes(now)
                for target, command in self.silent_exits(now):
                    if not self.state.processes[target].exited:
                        self.to_process(target, command)
                self.stop_if_wanted(now)
                if self.phase == "running":
                    if not self.shards.busy():
                        self.ask_checkpoint(now)
                    self.shards.tick(now)
                    self.state.notes = shard_lines(self.shards)
                if now - last_draw >= 0.5:
                    last_draw = now
                    self.display.update(self.state, now - started)
        finally:
            self.end()
            self.display.update(self.state, time.monotonic() - started)
            self.display.stop()
        self.dead_letters_over()  # the final reports may be the first to pass the limit
        elapsed = time.monotonic() - (self.go_at or started)
        problems = list(self.state.problems)
        code = 1 if self.state.failed() else 0
        if self.seen_interrupts:
            code = 130
        result = RunResult(
            code, bool(self.seen_interrupts), self.state, self.run_dir, elapsed, problems
        )
        result.checkpoints = self.checkpoint_figures()
        result.shards = shard_summary(self.shards)
        result.run_id, result.remote = self.run_id, not self.shared
        return result

    def ask_checkpoint(self, now: float) -> None:
        checkpoint = self.checkpoints.due(now)
        if checkpoint is None:
            return
        for name, proc in self.state.processes.items():
            if not proc.exited:
                self.to_process(name, {"op": "checkpoint", "checkpoint": checkpoint})

    def checkpoint_figures(self) -> dict[str, Any]:
        stats = self.checkpoints.stats
        durations = sorted(stats.durations)
        return {
            "every_seconds": self.options.snapshot_every,
            "completed": stats.completed,
            "last": self.checkpoints.completed,
            "restores": stats.restores,
            "lost_nodes": list(self.lost_nodes),
            "recovery_seconds": [round(r, 3) for r in self.recoveries],
            "median_seconds": durations[len(durations) // 2] if durations else None,
            "last_bytes": stats.last_bytes,
        }
