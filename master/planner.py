"""Placement: which elements share a process (fusion) and which node runs each process.

Pure: takes the compiled topology, the nodes and their slots, returns a Plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from datablox.errors import RunError

FusionMode = Literal["auto", "off", "max"]


@dataclass(frozen=True)
class NodeInfo:
    """A node offered by a care-taker: its name and how many element processes it takes."""

    name: str
    slots: int


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

    def process_of(self) -> dict[str, str]:
        return {e: p.name for p in self.processes for e in p.elements}


class _Groups:
    """Union-find over element names."""

    def __init__(self, names: Sequence[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

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


def place_nodes(
    tradecraft: Mapping[str, Any], nodes: Sequence[NodeInfo], embedded: bool
) -> tuple[dict[str, str], list[str]]:
    """Node of every element: its ``on`` node, else the least loaded node."""
    notices: list[str] = []
    known = {n.name for n in nodes}
    load = {n.name: 0 for n in nodes}
    placed: dict[str, str] = {}
    for e in tradecraft["elements"]:
        want = e.get("node")
        if want and want in known:
            placed[e["name"]] = want
        elif want and embedded:
            placed[e["name"]] = nodes[0].name
            notices.append(
                f"element '{e['name']}' asks for node '{want}'; the embedded care-taker runs it"
            )
        elif want:
            raise RunError(
                f"element '{e['name']}' is placed on node '{want}', but no care-taker serves it "
                f"(nodes: {', '.join(sorted(known))})",
                "start a care-taker with --node " + want,
            )
        else:
            placed[e["name"]] = min(nodes, key=lambda n: load[n.name] / max(1, n.slots)).name
        load[placed[e["name"]]] += 1
    return placed, notices


def plan(
    tradecraft: Mapping[str, Any],
    nodes: Sequence[NodeInfo],
    fusion: FusionMode = "auto",
    cheap: Mapping[str, bool] | None = None,
    embedded: bool = True,
) -> Plan:
    """Decide processes and nodes.

    ``off``: one process per element. ``auto``: the topology's ``fuse`` groups,
    plus chain edges into a cheap element, plus more chain edges while a node
    has more processes than slots. ``max``: every chain edge is fused.
    Elements are only fused when they sit on the same node and are not sharded.
    """
    cheap = cheap or {}
    names = [e["name"] for e in tradecraft["elements"]]
    sharded = {e["name"] for e in tradecraft["elements"] if e.get("shard")}
    node_of, notices = place_nodes(tradecraft, nodes, embedded)
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
                groups.union(a, b)
        if fusion == "auto":
            slots = {n.name: n.slots for n in nodes}
            for a, b in edges:
                per_node: dict[str, int] = {}
                for g in groups.groups(names):
                    per_node[node_of[g[0]]] = per_node.get(node_of[g[0]], 0) + 1
                if per_node.get(node_of[a], 0) > slots[node_of[a]]:
                    groups.union(a, b)
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
    return Plan(processes, notices)


def process_name(number: int, element: str) -> str:
    """The name of process ``number`` whose first element is ``element`` (a file name:
    a group's '/' becomes '.')."""
    return f"p{number}-{element.replace('/', '.')}"
