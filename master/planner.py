"""Placement: which elements share a process (fusion) and which node runs each process.

Pure: takes the compiled topology, the nodes and their slots, returns a Plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from datablox.dsl.limits import MAX_FUSED_CHAIN
from datablox.errors import RunError

FusionMode = Literal["auto", "off", "max"]


@dataclass(frozen=True)
class NodeInfo:
    """A node offered by a care-taker: its name and how many element processes it takes."""

    name: str
    slots: int
    #: the CPU cores its care-taker may use (its CPU budget)
    cores: float = 1.0


@dataclass
class ProcessPlan:
    """One OS process: the elements it hosts (several when fused) and its node."""

    name: str
    node: str
    elements: list[str]


@dataclass
class Plan:
    processes: list[ProcessPlan]
    notices: list[str] = field(default_factory=list)
    #: why each element (or fused group) runs on its node
    reasons: list[str] = field(default_factory=list)

    def process_of(self) -> dict[str, str]:
        return {e: p.name for p in self.processes for e in p.elements}


class _Groups:
    """Union-find over element names."""

    def __init__(self, names: Sequence[str]) -> None:
        self.parent = {n: n for n in names}
        self.size = dict.fromkeys(names, 1)

    def chain(self, a: str, b: str) -> None:
        """Fuse a chain edge, unless the group would pass MAX_FUSED_CHAIN elements."""
        if self.size[self.find(a)] + self.size[self.find(b)] <= MAX_FUSED_CHAIN:
            self.union(a, b)

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.size[ra] += self.size[rb]

    def groups(self, order: Sequence[str]) -> list[list[str]]:
        out: dict[str, list[str]] = {}
        for n in order:
            out.setdefault(self.find(n), []).append(n)
        return list(out.values())


def chain_edges(tradecraft: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Push edges a→b where a has no other push output and b no other push input."""
    outs: dict[str, int] = {}
    ins: dict[str, int] = {}
    push = [c for c in tradecraft["connections"] if c["kind"] == "push"]
    for c in push:
        outs[c["from"]["element"]] = outs.get(c["from"]["element"], 0) + 1
        ins[c["to"]["element"]] = ins.get(c["to"]["element"], 0) + 1
    return [
        (c["from"]["element"], c["to"]["element"])
        for c in push
        if outs[c["from"]["element"]] == 1 and ins[c["to"]["element"]] == 1
    ]


def shard_of(element: str) -> str | None:
    """The shard an element is a member of (members are named ``SHARD#N``), or None."""
    return element.rsplit("#", 1)[0] if "#" in element else None


def pick_node(
    nodes: Sequence[NodeInfo],
    placed: Mapping[str, int],
    load: Mapping[str, float],
    size: int = 1,
    avoid: Mapping[str, int] | None = None,
) -> tuple[NodeInfo, str]:
    """The node with the least work for its size (elements placed plus the CPU cores
    already in use, per slot), preferring nodes with fewer members of the same shard
    (``avoid``); and why it was chosen."""

    def work(n: NodeInfo) -> float:
        return (placed.get(n.name, 0) + size + load.get(n.name, 0.0)) / max(1, n.slots)

    avoid = avoid or {}
    best = min(nodes, key=lambda n: (avoid.get(n.name, 0), work(n)))
    why = (
        f"least loaded ({placed.get(best.name, 0)} placed, {load.get(best.name, 0.0):.1f} "
        f"cores busy, {best.slots} slots)"
    )
    if avoid and len(nodes) > 1:
        why += f", {avoid.get(best.name, 0)} other member(s) of its shard there"
    return best, why


def place_nodes(
    tradecraft: Mapping[str, Any],
    nodes: Sequence[NodeInfo],
    embedded: bool,
    load: Mapping[str, float] | None = None,
    together: Sequence[Sequence[str]] = (),
) -> tuple[dict[str, str], list[str], list[str]]:
    """Node of every element: its ``on`` node, else the least loaded node.

    ``together``: groups of elements meant to share a process (fused chains),
    placed as one. A shard's members are spread: each goes to a node with the
    fewest members of that shard. ``load``: cores in use per node already.
    Returns the nodes, notices for the user, and the reason for each choice.
    """
    notices: list[str] = []
    reasons = []
    known = {n.name for n in nodes}
    load = load or {}
    placed: dict[str, str] = {}
    count: dict[str, int] = {}
    members: dict[tuple[str, str], int] = {}
    group_of = {m: list(g) for g in together for m in g}
    pins = {e["name"]: e.get("node") for e in tradecraft["elements"]}
    for e in tradecraft["elements"]:
        name = e["name"]
        if name in placed:
            continue
        group = group_of.get(name, [name])
        want = next((pins[m] for m in group if pins.get(m)), None)
        pinned_by = next((m for m in group if pins.get(m)), name)
        if want and want in known:
            node = want
            why = f"pinned (on {want})" + (f" with '{pinned_by}'" if pinned_by != name else "")
        elif want and embedded:
            node = nodes[0].name
            why = "embedded care-taker"
            notices.append(
                f"element '{pinned_by}' asks for node '{want}'; the embedded care-taker runs it"
            )
        elif want:
            raise RunError(
                f"element '{pinned_by}' is placed on node '{want}', but no care-taker serves it "
                f"(nodes: {', '.join(sorted(known))})",
                "start a care-taker with --node " + want,
            )
        else:
            shard = shard_of(name)
            avoid = {n: c for (s, n), c in members.items() if s == shard} if shard else None
            chosen, why = pick_node(nodes, count, load, len(group), avoid)
            node = chosen.name
        for m in group:
            placed[m] = node
            count[node] = count.get(node, 0) + 1
            if shard_of(m):
                key = (shard_of(m) or "", node)
                members[key] = members.get(key, 0) + 1
        kept = [m for m in group if m != name]
        reasons.append(
            f"'{name}' on {node}: {why}" + (f" (with {', '.join(kept)})" if kept else "")
        )
    return placed, notices, reasons


def plan(
    tradecraft: Mapping[str, Any],
    nodes: Sequence[NodeInfo],
    fusion: FusionMode = "auto",
    cheap: Mapping[str, bool] | None = None,
    embedded: bool = True,
    load: Mapping[str, float] | None = None,
) -> Plan:
    """Decide processes and nodes.

    ``off``: one process per element. ``auto``: the topology's ``fuse`` groups,
    plus chain edges into a cheap element, plus more chain edges while a node
    has more processes than slots. ``max``: every chain edge is fused.
    Elements are only fused when they sit on the same node and are not sharded;
    the chains meant to be fused are placed together. ``load``: the CPU cores
    each node has in use already.
    """
    cheap = cheap or {}
    names = [e["name"] for e in tradecraft["elements"]]
    sharded = {e["name"] for e in tradecraft["elements"] if e.get("shard")}
    pins = {e["name"]: e.get("node") for e in tradecraft["elements"]}
    intent = _Groups(names)
    if fusion != "off":
        for members in tradecraft.get("fuse", []):
            for other in members[1:]:
                intent.union(members[0], other)
        for a, b in chain_edges(tradecraft):
            wanted = fusion == "max" or cheap.get(b, False)
            apart = pins[a] and pins[b] and pins[a] != pins[b]
            if wanted and not apart and a not in sharded and b not in sharded:
                intent.chain(a, b)
    node_of, notices, reasons = place_nodes(
        tradecraft, nodes, embedded, load, [g for g in intent.groups(names) if len(g) > 1]
    )
    groups = _Groups(names)
    if fusion != "off":
        # a fused group is one process, so one node: a pinned member decides it
        pinned = {e["name"] for e in tradecraft["elements"] if e.get("node")}
        for members in tradecraft.get("fuse", []):
            anchor = next((m for m in members if m in pinned), members[0])
            for m in members:
                node_of[m] = node_of[anchor]

    def fusable(a: str, b: str) -> bool:
        return node_of[a] == node_of[b] and a not in sharded and b not in sharded

    edges = [(a, b) for a, b in chain_edges(tradecraft) if fusable(a, b)]
    if fusion != "off":
        for members in tradecraft.get("fuse", []):
            for other in members[1:]:
                groups.union(members[0], other)
        for a, b in edges:
            if fusion == "max" or cheap.get(b, False):
                groups.chain(a, b)
        if fusion == "auto":
            slots = {n.name: n.slots for n in nodes}
            for a, b in edges:
                per_node: dict[str, int] = {}
                for g in groups.groups(names):
                    per_node[node_of[g[0]]] = per_node.get(node_of[g[0]], 0) + 1
                if per_node.get(node_of[a], 0) > slots[node_of[a]]:
                    groups.chain(a, b)
    processes = [
        ProcessPlan(process_name(i, g[0]), node_of[g[0]], g)
        for i, g in enumerate(groups.groups(names))
    ]
    count: dict[str, int] = {}
    for p in processes:
        count[p.node] = count.get(p.node, 0) + 1
    for n in nodes:
        if count.get(n.name, 0) > n.slots:
            notices.append(
                f"node '{n.name}' runs {count[n.name]} element processes on {n.slots} slot(s); "
                "they share its CPUs (set --slots, or let --fusion auto fuse chains)"
            )
    return Plan(processes, notices, reasons)


def replace_lost(
    node_of: Mapping[str, str],
    elements_of: Mapping[str, Sequence[str]],
    lost: str,
    survivors: Sequence[NodeInfo],
    load: Mapping[str, float] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """New nodes for the processes of a lost node: each to the least loaded survivor
    (spreading a shard's members), pins or not. Returns process → node, and why."""
    load = load or {}
    count: dict[str, int] = {}
    members: dict[tuple[str, str], int] = {}
    for process, node in node_of.items():
        if node == lost:
            continue
        count[node] = count.get(node, 0) + 1
        for e in elements_of[process]:
            if shard_of(e):
                key = (shard_of(e) or "", node)
                members[key] = members.get(key, 0) + 1
    moves: dict[str, str] = {}
    reasons: list[str] = []
    for process in sorted(p for p, node in node_of.items() if node == lost):
        shard = next((shard_of(e) for e in elements_of[process] if shard_of(e)), None)
        avoid = {n: c for (s, n), c in members.items() if s == shard} if shard else None
        chosen, why = pick_node(survivors, count, load, 1, avoid)
        moves[process] = chosen.name
        count[chosen.name] = count.get(chosen.name, 0) + 1
        if shard:
            members[(shard, chosen.name)] = members.get((shard, chosen.name), 0) + 1
        elements = ", ".join(elements_of[process])
        reasons.append(
            f"process {process} ({elements}) moves from '{lost}' to '{chosen.name}': {why}"
        )
    return moves, reasons


#: Longest element name a process name repeats (it names files and a ZeroMQ identity).
PROCESS_NAME_CHARS = 60


def process_name(number: int, element: str) -> str:
    """The name of process ``number`` whose first element is ``element`` (a file name:
    a group's '/' becomes '.'; a long element name is cut, the number keeps it unique)."""
    name = element.replace("/", ".")
    if len(name) > PROCESS_NAME_CHARS:
        name = name[:PROCESS_NAME_CHARS] + "~"
    return f"p{number}-{name}"


def over_process_limit(p: Plan, limit: int) -> str | None:
    """Why ``p`` runs more element processes on a node than ``limit`` allows, or None."""
    per_node: dict[str, int] = {}
    for proc in p.processes:
        per_node[proc.node] = per_node.get(proc.node, 0) + 1
    over = {node: n for node, n in per_node.items() if n > limit}
    if not over:
        return None
    said = ", ".join(f"{n} element processes on node '{node}'" for node, n in sorted(over.items()))
    return f"the topology needs {said}; --max-processes allows {limit} per node"
