"""The physical topology of a run with shards: members as elements, connections per member.

Pure. A topology names each shard once (``x``); a run has members ``x#1``,
``x#2``, … — each an element of its own, in a process of its own, never
fused. Every connection into or out of a shard becomes one physical
connection per member (per pair of members between two shards), with its own
id, so sequence numbers, barriers and ends work per member exactly as for any
other connection. Member numbers and connection ids are never reused: a
member added after another was removed gets a new number, so its counters and
files are its own.

A keyed shard also has its :class:`RoutingTable`; :meth:`Layout.routing` is
what a sender is started with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datablox.shards.routing import RoutingTable


def member_name(shard: str, member: int) -> str:
    return f"{shard}#{member}"


@dataclass
class Shard:
    """One sharded element of the topology and its members now."""

    name: str
    entry: dict[str, Any]
    key: list[str] | None
    min: int
    max: int
    members: list[int] = field(default_factory=list)
    next_member: int = 1
    table: RoutingTable | None = None

    @property
    def keyed(self) -> bool:
        return self.key is not None

    def names(self) -> list[str]:
        return [member_name(self.name, m) for m in self.members]


class Layout:
    """Members of every shard and the physical connections between them."""

    def __init__(self, tradecraft: Mapping[str, Any], min_members: Mapping[str, int]) -> None:
        self.logical = tradecraft
        self.shards: dict[str, Shard] = {}
        for e in tradecraft["elements"]:
            spec = e.get("shard")
            if not spec:
                continue
            least = max(int(spec["min"]), int(min_members.get(e["name"], 1)))
            shard = Shard(e["name"], e, spec.get("key"), least, max(least, int(spec["max"])))
            self.shards[e["name"]] = shard
        self._element_ids: dict[str, int] = {}
        self._next_element = 1 + max((e["id"] for e in tradecraft["elements"]), default=0)
        self._conn_ids: dict[tuple[int, int, int], int] = {}
        self._next_conn = 1 + max((c["id"] for c in tradecraft["connections"]), default=0)
        for shard in self.shards.values():
            for _ in range(shard.min):
                self.add_member(shard.name)
            if shard.keyed:
                shard.table = RoutingTable.initial(shard.members)

    # ---- members ------------------------------------------------------------
    def add_member(self, name: str) -> int:
        shard = self.shards[name]
        member = shard.next_member
        shard.next_member += 1
        shard.members.append(member)
        return member

    def remove_member(self, name: str, member: int) -> None:
        self.shards[name].members.remove(member)

    def shard_of(self, element: str) -> str | None:
        """The shard an element name is a member of (None: not a member)."""
        base, sep, _ = element.rpartition("#")
        return base if sep and base in self.shards else None

    # ---- the physical topology ------------------------------------------------
    def _ends(self, element: str) -> list[tuple[str, int]]:
        """(physical element, member number or 0) for a logical element."""
        shard = self.shards.get(element)
        if shard is None:
            return [(element, 0)]
        return [(member_name(element, m), m) for m in shard.members]

    def member_entry(self, name: str, member: int) -> dict[str, Any]:
        shard = self.shards[name]
        full = member_name(name, member)
        if full not in self._element_ids:
            self._element_ids[full] = shard.entry["id"] if member == 1 else self._next_element
            if member != 1:
                self._next_element += 1
        entry = copy.deepcopy(shard.entry)
        entry.update(id=self._element_ids[full], name=full)
        entry["shard"] = {**entry["shard"], "of": name, "member": member}
        return entry

    def elements(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for e in self.logical["elements"]:
            if e["name"] in self.shards:
                out.extend(self.member_entry(e["name"], m) for m in self.shards[e["name"]].members)
            else:
                out.append(e)
        return out

    def connections(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for c in self.logical["connections"]:
            src, dst = c["from"], c["to"]
            if src["element"] not in self.shards and dst["element"] not in self.shards:
                out.append(c)
                continue
            for src_el, k_from in self._ends(src["element"]):
                for dst_el, k_to in self._ends(dst["element"]):
                    out.append(self._physical(c, src_el, k_from, dst_el, k_to))
        return out

    def _physical(
        self, c: Mapping[str, Any], src_el: str, k_from: int, dst_el: str, k_to: int
    ) -> dict[str, Any]:
        ident = (c["id"], k_from, k_to)
        if ident not in self._conn_ids:
            self._conn_ids[ident] = self._next_conn
            self._next_conn += 1
        conn: dict[str, Any] = {
            "id": self._conn_ids[ident],
            "kind": c["kind"],
            "from": {**c["from"], "element": src_el},
            "to": {**c["to"], "element": dst_el},
            "logical": c["id"],
        }
        if k_to:
            shard = self.shards[c["to"]["element"]]
            conn["to_shard"] = {
                "name": shard.name,
                "logical": c["id"],
                "member": k_to,
                "key": shard.key,
                "class": shard.entry["class"],
                "port": c["from"]["port"],
            }
        if k_from:
            conn["from_shard"] = {"name": c["from"]["element"], "member": k_from}
        return conn

    def tradecraft(self) -> dict[str, Any]:
        """The topology as the runtime runs it: members in place of shards."""
        return {
            **self.logical,
            "elements": self.elements(),
            "connections": self.connections(),
        }

    def routing(self) -> dict[str, dict[str, Any]]:
        """Every keyed shard's routing table, as senders are started with it."""
        return {
            s.name: {"version": s.table.version, "owners": list(s.table.owners)}
            for s in self.shards.values()
            if s.table is not None
        }

    def into(self, name: str) -> set[int]:
        """The logical connection ids of the links into shard ``name`` (one per sender)."""
        return {
            c["to_shard"]["logical"]
            for c in self.connections()
            if c.get("to_shard", {}).get("name") == name
        }

    # ---- what a checkpoint restores -------------------------------------------
    def save(self) -> dict[str, tuple[list[int], RoutingTable | None]]:
        return {n: (list(s.members), s.table) for n, s in self.shards.items()}

    def load(self, saved: Mapping[str, tuple[list[int], RoutingTable | None]]) -> None:
        """Members and tables as they were (member numbers keep growing)."""
        for name, (members, table) in saved.items():
            self.shards[name].members = list(members)
            self.shards[name].table = table
