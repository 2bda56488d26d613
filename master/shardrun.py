"""The master's side of shards: scaling rounds, and members added, moved and removed live.

Every change is one operation at a time, run as a generator that yields the
condition it waits for (a member started, every router paused, a partition's
state exported and imported); control messages and the run's ticks resume it.
Checkpoints and operations never overlap: a checkpoint is only asked when no
operation runs, and an operation only starts when no checkpoint is pending.

A keyed move of a batch of partitions (``_move``):

1. every sender into the shard (router) pauses the batch: holds its records
   and sends each old owner a MARKER after what it already sent it;
2. once every router has said so, each old owner exports the batch's state
   when the markers are in (all records sent before the pause processed) —
   for a class with ``read_only_inputs`` (a JOIN), when its other inputs'
   markers are in: it serves the records still queued on those inputs from
   what it kept, and forgets that when their markers arrive (all of a JOIN's
   moving partitions then go in one batch);
3. each new owner imports it;
4. the routers switch to the next table version and send what they held.

Scale-out adds members (processes of their own, wired to the shard's
receivers, then to its routers: ``master/shardwiring.py``) and moves
partitions to them in batches; scale-in moves the partitions of the leaving
members away, then ends their input connections, so they finish like any
element whose inputs ended.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datablox.errors import RunError
from datablox.master.planner import pick_node, process_name, shard_of
from datablox.master.reshard import Action
from datablox.master.shardwiring import MemberWiring
from datablox.partition import PARTITIONS
from datablox.registry import resolve
from datablox.shards.layout import Layout, member_name
from datablox.shards.policy import (
    Budget,
    Decision,
    Limits,
    MemberLoad,
    Observation,
    PolicyState,
    decide,
    offered,
)
from datablox.shards.routing import RoutingTable, batches, plan_add, plan_remove

if TYPE_CHECKING:
    from datablox.master.service import Run

Waiting = Generator[Callable[[], bool], None, None]

#: seconds over which the shard's throughput is measured for the timeline
RATE_WINDOW = 2.0
#: partitions moved per step (Megaphone: small batches keep each pause short)
MOVE_BATCH = 2


@dataclass
class ShardRecord:
    """What the summary and the live table show of one shard."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    #: (seconds since the data started, members, records/s into the shard)
    timeline: list[tuple[float, int, float]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    #: (time, records into the shard) over the last RATE_WINDOW seconds
    window: deque[tuple[float, int]] = field(default_factory=deque)


class ShardController:
    """Scaling rounds and live changes of a run's shards."""

    def __init__(self, run: Run, layout: Layout, actions: list[Action], autoscale: bool) -> None:
        self.run = run
        self.layout = layout
        self.actions = list(actions)
        self.autoscale = autoscale
        self.policies = {n: PolicyState(planned=len(s.members)) for n, s in layout.shards.items()}
        #: partitions per move: all at once when the class's queued records only read the
        #: state (a JOIN: the export does not wait for them), else MOVE_BATCH
        self.move_batch = {
            n: PARTITIONS
            if getattr(resolve(s.entry["class"]), "read_only_inputs", None)
            else MOVE_BATCH
            for n, s in layout.shards.items()
        }
        self.records = {n: ShardRecord() for n in layout.shards}
        self.op: Waiting | None = None
        #: a change decided, waiting for the checkpoint in progress to complete
        self.wanted: tuple[Waiting, str] | None = None
        #: the shard whose policy decided the wanted change (a later round may revise the
        #: change while it waits to start); None for a forced change
        self.revisable: str | None = None
        self.waiting: Callable[[], bool] | None = None
        self.op_name = ""
        self.move_id = 0
        self.paused: dict[int, set[str]] = {}
        self.moved_out: dict[int, dict[str, dict[str, str]]] = {}
        self.moved_in: dict[int, set[str]] = {}
        #: move -> the longest export and import of its members (seconds)
        self.move_times: dict[int, dict[str, float]] = {}
        self.wiring = MemberWiring(run)
        self.node_load: dict[str, dict[str, float]] = {}
        self.last_round = 0.0
        #: completed checkpoint -> the layout it holds
        self.saved: dict[int, Any] = {0: layout.save()}

    # ---- the run's hooks -------------------------------------------------------
    def busy(self) -> bool:
        """True while a change runs or waits to start (no new checkpoint is asked then)."""
        return self.op is not None or self.wanted is not None

    def tick(self, now: float) -> None:
        """Observe every second; decide when no change runs; start a decided change as soon
        as no checkpoint is in progress (checkpoints and changes never overlap)."""
        run = self.run
        if run.phase != "running" or run.state.stopping:
            return
        if now - self.last_round >= 1.0:
            self.last_round = now
            for name in self.layout.shards:
                self.observe(name, now)
            if self.op is None and (self.wanted is None or self.revisable is not None):
                self.decide(now)
        if self.op is not None:
            self.step()
        elif self.wanted is not None and run.checkpoints.pending is None:
            (op, name), self.wanted = self.wanted, None
            self.revisable = None
            self.start(op, name)

    def decide(self, now: float) -> None:
        for action in list(self.actions):
            if self.shard_in(action.shard) >= action.after:
                self.actions.remove(action)
                self.wanted = (self.forced(action), f"{action.shard}: {action.what}")
                self.revisable = None
                return
        if self.autoscale:
            for name in self.layout.shards:
                if self.round(name, now):
                    return

    def on_completed(self, checkpoint: int) -> None:
        self.saved = {checkpoint: self.layout.save()}

    def on_restore(self, checkpoint: int) -> None:
        """The run goes back to ``checkpoint``: its members and tables, no operation."""
        self.op = self.waiting = self.wanted = None
        self.wiring.clear()
        self.layout.load(self.saved.get(checkpoint, self.saved[max(self.saved)]))
        for name, shard in self.layout.shards.items():
            self.policies[name].planned = len(shard.members)
        self.run.state.set_connections(self.layout.connections())
        self.run.checkpoints.elements = frozenset(self.live_elements())

    def live_elements(self) -> list[str]:
        return [e["name"] for e in self.layout.elements()]

    def step(self) -> None:
        """Resume the operation while what it waits for holds."""
        while self.op is not None:
            try:
                # what it waits for may itself find the change impossible (a member ended)
                if self.waiting is not None and not self.waiting():
                    return
                self.waiting = next(self.op)
            except StopIteration:
                self.op = self.waiting = None
            except RunError as exc:
                self.run.display.log(f"shard change '{self.op_name}' abandoned: {exc}")
                self.op = self.waiting = None

    def start(self, op: Waiting, name: str) -> None:
        self.op, self.op_name, self.waiting = op, name, None
        self.step()

    # ---- messages ----------------------------------------------------------------
    def on_message(self, msg: dict[str, Any], process: str) -> None:
        op = msg["op"]
        if op == "shard_paused":
            self.paused.setdefault(int(msg["move"]), set()).add(process)
        elif op == "moved_out":
            self.moved_out.setdefault(int(msg["move"]), {})[msg["element"]] = msg["files"]
            self.note_move(int(msg["move"]), "export_seconds", msg)
        elif op == "moved_in":
            self.moved_in.setdefault(int(msg["move"]), set()).add(msg["element"])
            self.note_move(int(msg["move"]), "import_seconds", msg)
        elif op == "rewired":
            self.wiring.on_rewired(msg)
        elif op == "node_load":
            self.node_load[msg["node"]] = msg
        self.step()

    def note_move(self, move: int, what: str, msg: dict[str, Any]) -> None:
        """The longest export (or import) of a move, for its record in the summary."""
        times = self.move_times.setdefault(move, {})
        times[what] = max(times.get(what, 0.0), round(float(msg.get("seconds", 0.0)), 4))

    def routers(self, name: str) -> list[str]:
        """Live processes sending or asking into shard ``name``."""
        st = self.run.state
        found = {
            st.process_of[c["from"]["element"]]
            for c in st.connections
            if c.get("to_shard", {}).get("name") == name
        }
        return sorted(p for p in found if not self.wiring.gone(p))

    def ended(self, element: str) -> bool:
        return self.wiring.gone(self.run.state.process_of[element])

    # ---- observations and the policy ---------------------------------------------
    def shard_in(self, name: str) -> int:
        st = self.run.state
        return sum(
            st.elements[m].records_in
            for m in {
                c["to"]["element"]
                for c in st.all_connections
                if c.get("to_shard", {}).get("name") == name
            }
        )

    def observe(self, name: str, now: float) -> None:
        """The shard's throughput over the last few seconds (members report once a second,
        between batches, so one second's difference is lumpy)."""
        record = self.records[name]
        total = self.shard_in(name)
        record.window.append((now, total))
        while len(record.window) > 2 and now - record.window[0][0] > RATE_WINDOW:
            record.window.popleft()
        first_at, first = record.window[0]
        rate = (total - first) / (now - first_at) if now > first_at else 0.0
        since = now - (self.run.go_at or now)
        record.timeline.append((round(since, 1), len(self.layout.shards[name].members), rate))

    def round(self, name: str, now: float) -> bool:
        """One policy round for shard ``name``; True when it started a change."""
        st = self.run.state
        shard = self.layout.shards[name]
        if not self.routers(name) or any(self.ended(m) for m in shard.names()):
            return False  # its inputs have ended: nothing to scale for
        loads = []
        for member in shard.names():
            view = st.elements[member]
            proc = st.processes[view.process]
            loads.append(
                MemberLoad(
                    member,
                    proc.node,
                    float(view.stats.get("busy", 0.0)),
                    int(view.rate),
                    proc.cpu / 100.0,
                )
            )
        into = [c for c in st.connections if c.get("to_shard", {}).get("name") == name]
        senders = {c["from"]["element"] for c in into}
        arriving = sum(
            offered(st.elements[e].rate, float(st.elements[e].stats.get("blocked", 0.0)))
            for e in senders
        )
        backlog = sum(max(0, st.sent.get(c["id"], 0) - st.recv.get(c["id"], 0)) for c in into)
        obs = Observation(now, 1.0, tuple(loads), arriving, backlog)
        costs = [int(st.elements[m].stats.get("cost") or 0) for m in shard.names()]
        limits = Limits(shard.min, shard.max, max(costs, default=0))
        policy = self.policies[name]
        revising = self.revisable == name
        if revising:
            # the change decided last round has not started: decide afresh from what is seen now
            policy.planned = len(shard.members)
        elif self.revisable is not None:
            return False  # another shard's change waits to start
        decision = decide(obs, policy, limits, self.budget())
        self.log(name, decision, revises=revising)
        if decision.planned != len(shard.members):
            self.wanted = (self.scale(name, decision.planned), f"{name}: {decision.reason}")
            self.revisable = name
            return True
        if revising:
            self.wanted = self.revisable = None
        return False

    def budget(self) -> Budget:
        st = self.run.state
        nodes = {p.node for p in st.processes.values()}
        free = {}
        for node in nodes:
            load = self.node_load.get(node)
            if load is None:
                free[node] = 0.0
            else:
                free[node] = max(0.0, float(load["cores"]) - float(load["cpu_used"]))
        running = {n: 0 for n in nodes}
        for p in st.processes.values():
            if not self.wiring.gone(p.name):
                running[p.node] += 1
        return Budget(free, running, self.run.options.max_processes or 16)

    def log(self, name: str, decision: Decision, revises: bool = False) -> None:
        """Keep a round's decision (a repeat of the last one is not kept again). ``revises``:
        it replaces the change decided last round, which had not started yet."""
        record = self.records[name]
        since = time.monotonic() - (self.run.go_at or time.monotonic())
        last = record.decisions[-1] if record.decisions else None
        if revises and last is not None and last["planned"] != decision.planned:
            last["superseded"] = True
        entry = {
            "at": round(since, 1),
            "observed": decision.observed,
            "wanted": decision.wanted,
            "planned": decision.planned,
            "reason": decision.reason,
            "inputs": {k: round(v, 3) for k, v in decision.inputs.items()},
        }
        if not record.decisions or (record.decisions[-1]["reason"], decision.planned) != (
            entry["reason"],
            decision.planned,
        ):
            record.decisions.append(entry)
            if decision.planned != decision.observed:
                self.run.display.log(f"shard '{name}': {decision.reason}")

    # ---- operations ------------------------------------------------------------
    def forced(self, action: Action) -> Waiting:
        shard = self.layout.shards[action.shard]
        if action.what == "members":
            yield from self.scale(action.shard, action.count)
            return
        assert shard.table is not None  # Action.problem refused a pool at start
        counts = {m: 0 for m in shard.members} | shard.table.counts()
        if action.what == "rebalance":
            moves = plan_add(shard.table, [])
        else:
            if len(counts) < 2:
                raise RunError(f"shard '{shard.name}' has one member: nowhere to move to")
            src = max(counts, key=lambda m: (counts[m], -m))
            dst = min((m for m in counts if m != src), key=lambda m: (counts[m], m))
            mine = shard.table.partitions_of(src)[-action.count :]
            moves = dict.fromkeys(mine, dst)
        yield from self.move(action.shard, moves)

    def scale(self, name: str, target: int) -> Waiting:
        shard = self.layout.shards[name]
        target = max(shard.min, min(shard.max, target))
        now = len(shard.members)
        self.policies[name].planned = target
        if target > now:
            added = [self.spawn(name) for _ in range(target - now)]
            # routers send to a member only once it runs (its receivers have answered)
            yield lambda: all(self.started(m) and not self.wiring.held(m) for m in added)
            for member in added:
                self.wiring.connect(member)
            if shard.table is not None:
                numbers = [int(m.rpartition("#")[2]) for m in added]
                yield from self.move(name, plan_add(shard.table, numbers))
        elif target < now:
            leaving = shard.members[target:]
            if shard.table is not None:
                yield from self.move(name, plan_remove(shard.table, leaving))
            for number in leaving:
                self.disconnect(name, number)
        self.run.display.log(f"shard '{name}' has {len(shard.members)} member(s)")

    def spawn(self, name: str) -> str:
        """Start a new member of shard ``name`` in a process of its own."""
        run, st = self.run, self.run.state
        member = self.layout.add_member(name)
        entry = self.layout.member_entry(name, member)
        node = self.member_node(name)
        process = process_name(len(st.processes), entry["name"])
        st.add_process(process, node, entry)
        self.wiring.spawned[process] = entry["name"]
        # the routers learn of it once it runs; until then the run's connections
        # hold only what the member itself and its receivers need
        st.set_connections(self.layout.connections())
        run.checkpoints.elements = frozenset(self.live_elements())
        spec = run.process_spec(process)
        spec["joining"] = True
        names, blobs = run.module_blobs()
        # the node may run nothing of this run yet: the message says how to run it there
        run.send_node(node, {**run.start_message("spawn", [spec]), "blobs": names}, blobs)
        run.display.log(f"shard '{name}': starting member {entry['name']}")
        return str(entry["name"])

    def member_node(self, name: str) -> str:
        """The node for a new member of shard ``name``: the least loaded, preferring nodes
        with fewer of its members."""
        st = self.run.state
        nodes = list(self.run.master.nodes.values())
        count: dict[str, int] = {}
        members: dict[str, int] = {}
        for proc in st.processes.values():
            if self.wiring.gone(proc.name):
                continue
            count[proc.node] = count.get(proc.node, 0) + 1
            if any(shard_of(e) == name for e in proc.elements):
                members[proc.node] = members.get(proc.node, 0) + 1
        load = {n: float(v.get("cpu_used", 0.0)) for n, v in self.node_load.items()}
        return pick_node(nodes, count, load, 1, members)[0].name

    def started(self, member: str) -> bool:
        st = self.run.state
        proc = st.processes[st.process_of[member]]
        if proc.started:
            return True  # it may have ended since (every sender into it had ended)
        if proc.exited:
            raise RunError(f"member {member} ended before it started")
        return False

    def disconnect(self, name: str, member_number: int) -> None:
        """End the links into a member that owns nothing any more; it finishes."""
        logical = sorted(self.layout.into(name))
        for process in self.routers(name):
            self.wiring.send(
                process, {"op": "shard_remove", "logical": logical, "member": member_number}
            )
        self.layout.remove_member(name, member_number)
        self.run.state.set_connections(self.layout.connections())
        self.run.checkpoints.elements = frozenset(self.live_elements())

    def move(self, name: str, moves: dict[int, int]) -> Waiting:
        """Move partitions to new owners, a batch at a time, while the others flow."""
        shard = self.layout.shards[name]
        for batch in batches(moves, self.move_batch[name]):
            assert shard.table is not None
            if not self.routers(name):
                # its members end with their inputs: the state they hold is all there is
                raise RunError(f"the stream into shard '{name}' ended first")
            yield from self._move(name, shard.table, batch)

    def _move(self, name: str, table: RoutingTable, batch: dict[int, int]) -> Waiting:
        shard = self.layout.shards[name]
        self.move_id += 1
        move, started = self.move_id, time.monotonic()
        logical = sorted(self.layout.into(name))
        routers = self.routers(name)
        for process in routers:
            self.wiring.send(
                process,
                {
                    "op": "shard_pause",
                    "logical": logical,
                    "partitions": sorted(batch),
                    "move": move,
                },
            )
        yield lambda: all(p in self.paused.get(move, set()) or self.wiring.gone(p) for p in routers)
        parts: dict[str, dict[str, list[int]]] = {}
        for partition, dst in batch.items():
            src = member_name(name, table.owner(partition))
            parts.setdefault(src, {}).setdefault(member_name(name, dst), []).append(partition)
        for src, by_dst in parts.items():
            if self.ended(src):
                raise RunError(f"member {src} ended during a move")
            self.wiring.send(
                self.run.state.process_of[src],
                {"op": "move_out", "move": move, "element": src, "parts": by_dst},
            )
        yield lambda: parts.keys() <= self.moved_out.get(move, {}).keys()
        files: dict[str, list[str]] = {}
        for exported in self.moved_out.pop(move).values():
            for receiver, file in exported.items():
                files.setdefault(receiver, []).append(file)
        for receiver, found in files.items():
            self.wiring.send(
                self.run.state.process_of[receiver],
                {"op": "move_in", "move": move, "element": receiver, "files": found},
            )
        yield lambda: files.keys() <= self.moved_in.get(move, set())
        shard.table = table.moved(batch)
        for process in self.routers(name):
            self.wiring.send(
                process,
                {
                    "op": "shard_switch",
                    "logical": logical,
                    "owners": list(shard.table.owners),
                    "version": shard.table.version,
                },
            )
        self.paused.pop(move, None)
        self.moved_in.pop(move, None)
        self.records[name].moves.append(
            {
                "move": move,
                "partitions": len(batch),
                "version": shard.table.version,
                "at": round(started - (self.run.go_at or started), 3),
                "monotonic": started,
                "seconds": round(time.monotonic() - started, 4),
                **self.move_times.pop(move, {}),
            }
        )
