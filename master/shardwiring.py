"""Wiring new shard members in: rewiring messages kept until each process answers them.

A new member is wired in two steps. When it is ready, each receiver of its
outputs is told to wait for its connections' ends (``add_inputs``) and the
member gets its wiring; its ``go`` waits until every receiver has answered.
Once it runs, each sender into the shard (router) opens links to it
(``shard_add``). A process that has finished reads no more control messages,
so each message is kept in a :class:`~datablox.shards.rewiring.Ledger` until
answered, and what a finished process never took is settled with the member:
it drops what it would send to a receiver that is gone, and ends itself the
connections of a sender that is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datablox.shards.rewiring import Kind, Ledger, Settled, member_ops

if TYPE_CHECKING:
    from datablox.master.service import Run


class MemberWiring:
    """The rewiring of a run's shard changes, message by message."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.spawned: dict[str, str] = {}  # process -> member element
        #: rewiring messages not answered yet
        self.ledger = Ledger()
        #: spawned members started whose ``go`` waits for their receivers' answers
        self.go_held: set[str] = set()

    def clear(self) -> None:
        """A restore: no message sent before it will be answered."""
        self.ledger.clear()
        self.go_held.clear()

    def on_ready(self, process: str) -> bool:
        """A spawned member is ready: make its outputs known downstream, wire it. Its ``go``
        waits until every receiver has said whether it took the member's connections."""
        member = self.spawned.get(process)
        if member is None:
            return False
        st = self.run.state
        by_process: dict[str, list[dict[str, Any]]] = {}
        for c in st.connections:
            if c["from"]["element"] == member:
                by_process.setdefault(st.process_of[c["to"]["element"]], []).append(c)
        settled = [
            self.rewire(target, process, "add_inputs", conns, {})
            for target, conns in by_process.items()
        ]
        self.run.to_process(process, st.wire_message(process))
        for done in settled:
            if done is not None:
                self.settle(done)
        return True

    def hold_go(self, process: str) -> bool:
        """True (and the ``go`` is kept) while a member's receivers have not all answered."""
        if self.ledger.waiting(process, "add_inputs"):
            self.go_held.add(process)
            return True
        return False

    def rewire(
        self,
        target: str,
        member: str,
        kind: Kind,
        conns: list[dict[str, Any]],
        extra: dict[str, Any],
    ) -> Settled | None:
        """Send ``kind`` about ``conns`` to ``target`` and keep it until answered; a target
        that reads no more refuses at once (the settlement is returned, not applied)."""
        number = self.ledger.sent(target, member, kind, conns)
        if self.gone(target):
            return self.ledger.answered(number, [])
        self.run.to_process(target, {"op": kind, "conns": conns, "number": number, **extra})
        return None

    def settle(self, settled: Settled) -> None:
        """Tell the member what was refused; give it its ``go`` once nothing is pending."""
        member = settled.member
        if self.gone(member):
            return
        for op in member_ops(settled):
            self.run.to_process(member, op)
        if member in self.go_held and not self.ledger.waiting(member, "add_inputs"):
            self.go_held.discard(member)
            self.run.go(member)

    def on_rewired(self, msg: dict[str, Any]) -> None:
        """A process's answer to a rewiring message."""
        settled = self.ledger.answered(int(msg["number"]), msg.get("taken", []))
        if settled is not None:
            self.settle(settled)

    def on_gone(self, process: str) -> None:
        """``process`` reads no more: its final report came (its answers come before it), or
        it exited other than cleanly."""
        for settled in self.ledger.gone(process):
            self.settle(settled)
        self.go_held.discard(process)

    def gone(self, process: str) -> bool:
        """True once ``process`` reads no more control messages: it has exited, or sent its
        final report (after which it reads nothing; its exit is known later). A message
        sent to it now is never read."""
        proc = self.run.state.processes[process]
        return bool(proc.exited) or proc.reported

    def send(self, process: str, msg: dict[str, Any]) -> None:
        if not self.gone(process):
            self.run.to_process(process, msg)

    def held(self, member: str) -> bool:
        """True while a receiver of ``member`` has not answered (it has no ``go`` yet)."""
        return self.ledger.waiting(self.run.state.process_of[member], "add_inputs")

    def connect(self, member: str) -> None:
        """Routers open links (and query sockets) to a started member. A sender element the
        master knows has finished never linked to it: the member ends that connection
        itself, and no router opens a link only to end it. A router that finishes before
        reading ``shard_add`` takes none, and the same follows."""
        st = self.run.state
        process = st.process_of[member]
        if self.gone(process):
            return  # every sender into it had ended before it started
        endpoints = st.processes[process].endpoints
        ended: dict[int, str] = {}
        by_process: dict[str, list[dict[str, Any]]] = {}
        for c in st.connections:
            if c["to"]["element"] != member or not c.get("to_shard"):
                continue
            if st.elements[c["from"]["element"]].finished:
                ended[c["id"]] = c["kind"]
            else:
                by_process.setdefault(st.process_of[c["from"]["element"]], []).append(c)
        if ended:
            self.settle(Settled(process, "shard_add", ended))
        for router, conns in by_process.items():
            done = self.rewire(router, process, "shard_add", conns, {"endpoints": endpoints})
            if done is not None:
                self.settle(done)
