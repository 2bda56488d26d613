"""What a run does when a node stops answering.

It re-places the node's processes, restores every element from the last
checkpoint, and fences the node if it comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datablox.master.planner import replace_lost

if TYPE_CHECKING:
    from datablox.master.checkpointing import Coordinator
    from datablox.master.cluster import Cluster
    from datablox.master.runopts import RunOptions
    from datablox.master.service import Display
    from datablox.master.state import RunState


class NodeWatch:
    """Heartbeats and node loss, for ``Run``."""

    master: Cluster
    state: RunState
    options: RunOptions
    display: Display
    checkpoints: Coordinator
    run_id: str
    phase: str
    kill_sent: bool
    lost_at: float | None
    lost_nodes: list[str]
    fenced: set[str]

    def restore(self, why: str) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def watch_nodes(self, now: float) -> None:
        """Heartbeat every node; declare lost those silent for the heartbeat timeout."""
        self.master.heartbeat(now)
        for node in self.master.silent(self.options.heartbeat_timeout, now):
            self.node_lost(node, now)
        for node in self.master.restarted():
            # a new care-taker there knows nothing of this run's processes
            self.display.log(f"the care-taker of node '{node}' was restarted")
            self.node_lost(node, now)

    def node_lost(self, node: str, now: float) -> None:
        """A node stopped answering: its elements run on the others from now on."""
        st = self.state
        self.master.mark_lost(node)
        self.lost_nodes.append(node)
        affected = sorted(p.name for p in st.processes.values() if p.node == node)
        self.display.log(
            f"node '{node}' missed heartbeats for {self.options.heartbeat_timeout:g} s: "
            f"declared lost ({len(affected)} process(es) ran there)"
        )
        if not affected or st.done():
            return
        survivors = list(self.master.nodes.values())
        restorable = self.phase in ("running", "recovering") and self.checkpoints.restorable()
        if self.kill_sent or not survivors or not restorable:
            if not self.kill_sent:
                st.problems.append(
                    f"node '{node}' was lost "
                    + (
                        "and no other node is left"
                        if not survivors
                        else "before the topology had started"
                    )
                )
            # its processes are gone with it: nothing more will be heard of them
            for name in affected:
                if not st.processes[name].exited:
                    st.on_exit(name, "crashed", -9, f"node '{node}' lost")
            self.kill()
            return
        load = {link.name: float(link.figures.get("cpu_used", 0.0)) for link in self.master.links}
        moves, reasons = replace_lost(
            {p.name: p.node for p in st.processes.values()},
            {p.name: p.elements for p in st.processes.values()},
            node,
            survivors,
            load,
        )
        for process, target in moves.items():
            st.move_process(process, target)
        for reason in reasons:
            self.display.log(reason)
        self.lost_at = now
        self.restore(f"node '{node}' lost")

    def fence(self, node: str) -> None:
        """A node declared lost speaks again: whatever of this run it still runs is stopped
        (its elements run elsewhere now), and nothing it says counts."""
        if node not in self.fenced:
            self.fenced.add(node)
            self.display.log(f"node '{node}' is back; fencing it: this run's processes there stop")
        self.master.fence(node, {"op": "fence", "run": self.run_id})
