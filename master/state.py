"""The master's picture of one run: processes, element counters, what has ended.

Pure bookkeeping: events go in through ``on_*`` methods with the time passed
in; messages to send come back as ``(process, message)`` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datablox.master.planner import Plan
from datablox.master.words import counted

Command = tuple[str, dict[str, Any]]


@dataclass
class ElementView:
    """What the master knows about one element."""

    name: str
    cls: str
    process: str
    node: str
    stats: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    #: its outputs ended: it asks no more (it may still answer queries)
    asks_done: bool = False
    failed: str | None = None
    rate: float = 0.0
    last_count: int = 0
    last_at: float | None = None
    #: seconds from the start of the run to the element's finish (None: not finished)
    finished_after: float | None = None

    @property
    def records_in(self) -> int:
        return int(self.stats.get("in", 0))

    def shares(self, elapsed: float | None = None) -> tuple[float, float, float]:
        """(busy, blocked, idle) fractions: the last second's, or the whole run's.

        For the whole run (``elapsed`` given), they are shares of the element's own
        time: from the start of the run to its finish, or to ``elapsed`` when it did
        not finish. A source that finished early was not idle for the rest of the run.
        """
        if elapsed:
            span = self.finished_after if self.finished_after else elapsed
            busy = min(1.0, float(self.stats.get("busy_seconds", 0.0)) / span)
            blocked = min(1.0 - busy, float(self.stats.get("blocked_seconds", 0.0)) / span)
            return busy, blocked, max(0.0, 1.0 - busy - blocked)
        busy = float(self.stats.get("busy", 0.0))
        blocked = float(self.stats.get("blocked", 0.0))
        return busy, blocked, float(self.stats.get("idle", max(0.0, 1.0 - busy - blocked)))

    @property
    def records_out(self) -> int:
        return int(self.stats.get("out", 0))


@dataclass
class ProcessView:
    name: str
    node: str
    elements: list[str]
    ready: bool = False
    started: bool = False
    endpoints: dict[str, str] = field(default_factory=dict)
    exited: str | None = None
    exit_code: int | None = None
    #: the process's last report ("finished") arrived; it may come after its exit
    reported: bool = False
    restarts: int = 0
    cpu: float = 0.0
    rss: int = 0
    peak_rss: int = 0
    pid: int | None = None
    #: when its last load report arrived (monotonic), once it runs
    last_load: float | None = None


#: Seconds without a load report (sent every second) after which a running process is
#: shown as silent rather than with its last figures alone.
SILENT_AFTER = 3.0


class RunState:
    """Bookkeeping of a running topology."""

    def __init__(self, tradecraft: Mapping[str, Any], plan: Plan) -> None:
        self.tradecraft = tradecraft
        self.plan = plan
        self.process_of = plan.process_of()
        self.processes = {
            p.name: ProcessView(p.name, p.node, list(p.elements)) for p in plan.processes
        }
        self.elements = {
            e["name"]: ElementView(
                e["name"],
                e["class"],
                self.process_of[e["name"]],
                self.processes[self.process_of[e["name"]]].node,
            )
            for e in tradecraft["elements"]
        }
        #: element name -> its entry in the (physical) topology
        self.entries = {e["name"]: e for e in tradecraft["elements"]}
        #: the connections of the run as it is now (shard members come and go)
        self.connections = list(tradecraft["connections"])
        #: every connection the run has had, for the counts
        self.all_connections = list(self.connections)
        # logical counters: restored with the snapshots after a crash
        self.sent: dict[int, int] = {}
        self.recv: dict[int, int] = {}
        #: records sent again after restores (what was reported sent before the crash,
        #: minus what the restored senders had sent at the checkpoint), per connection
        self.replayed: dict[int, int] = {}
        #: records of batches a receiver had already had, dropped, per connection
        self.duplicates: dict[int, int] = {}
        #: what each connection had sent by the last reports before a restore
        self.sent_before_restore: dict[int, int] = {}
        self.dropped: dict[int, int] = {}
        self.problems: list[str] = []
        self.stopping = False
        #: lines shown under the live table (one per shard)
        self.notes: list[str] = []
        #: what elements said the user should know, though it is not an error
        self.warnings: list[str] = []

    # ---- start-up ----------------------------------------------------------
    def spec_for(self, process: str) -> dict[str, Any]:
        """The part of the topology one process needs."""
        proc = self.processes[process]
        hosted = set(proc.elements)
        return {
            "process": process,
            "elements": [self.entries[n] for n in proc.elements],
            "connections": [
                c
                for c in self.connections
                if c["from"]["element"] in hosted or c["to"]["element"] in hosted
            ],
            "search_path": list(self.tradecraft.get("search_path", [])),
        }

    def add_process(self, process: str, node: str, entry: dict[str, Any]) -> None:
        """A new shard member, in a process of its own."""
        self.processes[process] = ProcessView(process, node, [entry["name"]])
        self.process_of[entry["name"]] = process
        self.entries[entry["name"]] = entry
        self.elements[entry["name"]] = ElementView(entry["name"], entry["class"], process, node)

    def move_process(self, process: str, node: str) -> None:
        """``process`` runs on ``node`` from its next start (its node was lost)."""
        self.processes[process].node = node
        for element in self.processes[process].elements:
            self.elements[element].node = node

    def set_connections(self, connections: list[dict[str, Any]]) -> None:
        """The connections of the run now (after members were added or removed)."""
        known = {c["id"] for c in self.all_connections}
        self.all_connections.extend(c for c in connections if c["id"] not in known)
        self.connections = list(connections)

    def on_ready(self, process: str, endpoints: Mapping[str, str], pid: int | None) -> None:
        proc = self.processes[process]
        proc.ready = True
        proc.started = False
        proc.endpoints = dict(endpoints)
        proc.pid = pid

    def all_ready(self) -> bool:
        return all(p.ready or p.exited for p in self.processes.values())

    def all_started(self) -> bool:
        return all(p.started or p.exited for p in self.processes.values())

    def endpoints(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for proc in self.processes.values():
            merged.update(proc.endpoints)
        return merged

    def wire_message(self, process: str) -> dict[str, Any]:
        """Endpoints to connect to, and inputs and askers already finished (after a restart)."""
        hosted = set(self.processes[process].elements)
        ended = [
            c["id"]
            for c in self.connections
            if c["kind"] == "push"
            and c["to"]["element"] in hosted
            and self.elements[c["from"]["element"]].finished
        ]
        asked = [
            c["id"]
            for c in self.connections
            if c["kind"] == "query"
            and c["to"]["element"] in hosted
            and (
                self.elements[c["from"]["element"]].finished
                or self.elements[c["from"]["element"]].asks_done
            )
        ]
        return {"op": "wire", "endpoints": self.endpoints(), "ended": ended, "query_done": asked}

    # ---- running -----------------------------------------------------------
    def on_load(self, process: str, msg: Mapping[str, Any], now: float) -> None:
        proc = self.processes[process]
        proc.last_load = now
        for key in ("cpu", "rss", "peak_rss"):
            if key in msg:
                setattr(proc, key, msg[key])
        for name, stats in msg.get("elements", {}).items():
            view = self.elements[name]
            shares: dict[str, Any] = {
                k: view.stats[k] for k in ("busy", "blocked", "idle") if k in view.stats
            }
            view.stats = {**shares, **stats}
            count = max(view.records_in, view.records_out)
            if view.last_at is not None and now > view.last_at:
                view.rate = (count - view.last_count) / (now - view.last_at)
            view.last_count, view.last_at = count, now
        for conn, n in msg.get("dropped", {}).items():
            self.dropped[int(conn)] = int(n)
        for key, table in (
            ("sent", self.sent),
            ("recv", self.recv),
            ("duplicates", self.duplicates),
        ):
            for conn, n in msg.get(key, {}).items():
                table[int(conn)] = int(n)

    def on_final_report(self, process: str, msg: Mapping[str, Any], now: float) -> None:
        """A process's last counters, sent just before it exits (they may arrive after)."""
        self.on_load(process, msg, now)
        self.processes[process].reported = True

    def on_element_finished(
        self, name: str, failed: str | None, stats: Mapping[str, Any]
    ) -> list[Command]:
        view = self.elements[name]
        view.finished = True
        view.stats = dict(stats)
        view.rate = 0.0
        if failed:
            view.failed = failed
            self.problems.append(f"element '{name}': {failed}")
        return self.asking_over(name)

    def on_outputs_ended(self, name: str) -> list[Command]:
        """``name``'s outputs ended: it asks no more, though it may still answer."""
        return self.asking_over(name)

    def asking_over(self, name: str) -> list[Command]:
        """Tell the elements ``name`` asks that it asks no more."""
        self.elements[name].asks_done = True
        return [
            (self.process_of[c["to"]["element"]], {"op": "query_done", "conns": [c["id"]]})
            for c in self.connections
            if c["kind"] == "query" and c["from"]["element"] == name
        ]

    def on_exit(self, process: str, kind: str, code: int, detail: str = "") -> list[Command]:
        """A process is gone for good; end its outputs so downstream can finish."""
        proc = self.processes[process]
        proc.exited = kind
        proc.exit_code = code
        commands: list[Command] = []
        if kind == "finished":
            return commands
        what = {
            "start_failed": "could not start",
            "element_error": "stopped after an error",
            "crashed": "crashed and was not restarted",
            "gave_up": f"crashed {counted(proc.restarts + 1, 'time')}; gave up",
            "killed": "was killed",
        }.get(kind, kind)
        # failures are reported by the element itself; kills follow an earlier problem
        if kind not in ("start_failed", "element_error", "killed"):
            self.problems.append(
                f"process {process} ({', '.join(proc.elements)}) {what} "
                f"(exit code {code}){': ' + detail if detail else ''}"
            )
        for c in self.connections:
            if c["kind"] == "push" and c["to"]["element"] in proc.elements:
                sender = self.process_of[c["from"]["element"]]
                if sender != process and not self.processes[sender].exited:
                    commands.append((sender, {"op": "abandon", "conns": [c["id"]]}))
        for name in proc.elements:
            self.elements[name].finished = True
            self.elements[name].failed = self.elements[name].failed or what
            for c in self.connections:
                if c["from"]["element"] != name:
                    continue
                target = self.process_of[c["to"]["element"]]
                if self.processes[target].exited:
                    continue
                op = "ended" if c["kind"] == "push" else "query_done"
                commands.append((target, {"op": op, "conns": [c["id"]]}))
        return commands

    def on_restore(self, live: set[str] | None = None) -> None:
        """Every process (of ``live``, the processes the checkpoint holds) starts again from a
        checkpoint: nothing has started or ended yet. The others (shard members added
        after it) are retired."""
        for proc in self.processes.values():
            proc.ready = proc.started = proc.reported = False
            proc.exited = None
            proc.exit_code = None
            if live is not None and proc.name not in live:
                proc.exited, proc.reported = "retired", True
        for view in self.elements.values():
            view.finished = bool(self.processes[view.process].exited)
            view.asks_done = view.finished  # the others say again when their outputs end
            view.rate = 0.0
            view.last_at = None
        self.sent_before_restore = dict(self.sent)

    def on_started(self, process: str, sent: Mapping[str, int]) -> None:
        """A (restored) process says what its connections had sent at its checkpoint."""
        for conn, n in sent.items():
            c = int(conn)
            before = self.sent_before_restore.pop(c, None)
            if before is not None and before > n:
                self.replayed[c] = self.replayed.get(c, 0) + before - int(n)
            self.sent[c] = int(n)

    def replayed_into(self, name: str) -> int:
        """Records sent to ``name`` again after restores, plus duplicates it dropped."""
        return sum(
            self.replayed.get(c["id"], 0) + self.duplicates.get(c["id"], 0)
            for c in self.all_connections
            if c["kind"] == "push" and c["to"]["element"] == name
        )

    def connection_figures(self) -> dict[str, dict[str, int]]:
        """Per push connection: records sent, received, replayed after restores, duplicates."""
        out = {}
        for c in self.all_connections:
            if c["kind"] != "push":
                continue
            cid = c["id"]
            edge = (
                f"{c['from']['element']}.{c['from']['port']} -> "
                f"{c['to']['element']}.{c['to']['port']}"
            )
            out[edge] = {
                "sent": self.sent.get(cid, 0),
                "received": self.recv.get(cid, self.sent.get(cid, 0)),
                "replayed": self.replayed.get(cid, 0),
                "duplicates_dropped": self.duplicates.get(cid, 0),
            }
        return out

    def backlog(self, name: str) -> int:
        """Records sent towards ``name`` but not yet received by it."""
        total = 0
        mine = self.process_of[name]
        for c in self.all_connections:
            # fused connections are direct calls: nothing waits on them
            if (
                c["kind"] == "push"
                and c["to"]["element"] == name
                and (self.process_of[c["from"]["element"]] != mine)
            ):
                total += max(0, self.sent.get(c["id"], 0) - self.recv.get(c["id"], 0))
        return total

    def lost(self) -> list[str]:
        """Connections where fewer records arrived than were sent (after the run)."""
        out = []
        for c in self.all_connections:
            if c["kind"] != "push":
                continue
            if self.process_of[c["from"]["element"]] == self.process_of[c["to"]["element"]]:
                continue
            sent, recv = self.sent.get(c["id"], 0), self.recv.get(c["id"], 0)
            if sent <= recv:
                continue
            edge = (
                f"{c['from']['element']}.{c['from']['port']} -> "
                f"{c['to']['element']}.{c['to']['port']}"
            )
            dropped = self.dropped.get(c["id"], 0)
            if dropped:
                out.append(f"{edge}: {dropped:,} records discarded after the receiver gave up")
            receiver = c["to"]["element"]
            why = f"not taken: '{receiver}' failed" if self.elements[receiver].failed else "lost"
            out.append(f"{edge}: {sent:,} sent, {recv:,} received ({sent - recv:,} {why})")
        return out

    def silent_for(self, process: str, now: float) -> float | None:
        """Seconds a running process has not reported for, past :data:`SILENT_AFTER`
        (its loop is held: an element stuck in its own code, or in a long hook), or None."""
        proc = self.processes[process]
        if proc.exited or not proc.started or proc.last_load is None:
            return None
        age = now - proc.last_load
        return age if age > SILENT_AFTER else None

    def done(self) -> bool:
        """Every process has exited, and those that finished have sent their last report."""
        return all(
            p.exited and (p.exited != "finished" or p.reported) for p in self.processes.values()
        )

    def unreported(self) -> list[str]:
        """Processes that exited cleanly but whose last report has not arrived (yet)."""
        return [
            p.name for p in self.processes.values() if p.exited == "finished" and not p.reported
        ]

    def dead_letters(self) -> dict[str, int]:
        """Records each element has sent to its dead letters (as last reported), if any."""
        counts = {name: int(view.stats.get("dead", 0)) for name, view in self.elements.items()}
        return {name: n for name, n in counts.items() if n}

    def over_dead_letter_limit(self, limit: int | None) -> str | None:
        """What to report when the dead letters pass ``limit`` (None: no limit, or not yet)."""
        if limit is None:
            return None
        dead = self.dead_letters()
        if sum(dead.values()) <= limit:
            return None
        each = ", ".join(f"'{name}' {n:,}" for name, n in dead.items())
        return (
            f"{sum(dead.values()):,} records went to dead letters ({each}), more than the "
            f"{limit:,} the run allows (--max-dead-letters, max_dead_letters=)"
        )

    def failed(self) -> bool:
        return bool(self.problems) or any(
            p.exited not in (None, "finished", "retired") for p in self.processes.values()
        )
