"""The versioned routing table of a keyed shard: which member owns each of 256 partitions.

Pure: no sockets, no clock. Every sender into a keyed shard holds the same
table; a change produces a new table with the next version, and the runtime
switches senders to it at one agreed point (after the partitions that move
have drained). The planning functions return the moves (partition → new
owner) that a change needs, moving as few partitions as the balance allows:
going from 2 to 3 members moves 85 partitions, not the 127 that re-slicing
the key space into 3 ranges would move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from datablox.partition import PARTITIONS

#: partition -> the member it moves to
Moves = dict[int, int]


@dataclass(frozen=True)
class RoutingTable:
    """Partition → member, with a version that grows with every change."""

    version: int
    owners: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.owners) != PARTITIONS:
            raise ValueError(f"a routing table has {PARTITIONS} partitions, got {len(self.owners)}")

    @classmethod
    def initial(cls, members: Sequence[int]) -> RoutingTable:
        """Contiguous, equal ranges over ``members`` (version 0)."""
        if not members:
            raise ValueError("a routing table needs at least one member")
        n = len(members)
        return cls(0, tuple(members[p * n // PARTITIONS] for p in range(PARTITIONS)))

    def owner(self, partition: int) -> int:
        return self.owners[partition]

    def members(self) -> list[int]:
        return sorted(set(self.owners))

    def partitions_of(self, member: int) -> list[int]:
        return [p for p, owner in enumerate(self.owners) if owner == member]

    def counts(self) -> dict[int, int]:
        """Partitions per member."""
        found: dict[int, int] = {}
        for owner in self.owners:
            found[owner] = found.get(owner, 0) + 1
        return found

    def moved(self, moves: Mapping[int, int]) -> RoutingTable:
        """The next version, with ``moves`` applied."""
        owners = list(self.owners)
        for partition, member in moves.items():
            if not 0 <= partition < PARTITIONS:
                raise ValueError(f"no partition {partition}")
            owners[partition] = member
        return RoutingTable(self.version + 1, tuple(owners))

    def diff(self, other: RoutingTable) -> Moves:
        """The moves that turn this table into ``other``."""
        return {p: b for p, (a, b) in enumerate(zip(self.owners, other.owners)) if a != b}


def _shares(members: Sequence[int]) -> dict[int, int]:
    """How many partitions each member should own: equal, the first ones one more."""
    base, extra = divmod(PARTITIONS, len(members))
    return {m: base + (1 if i < extra else 0) for i, m in enumerate(sorted(members))}


def _balance(table: RoutingTable, members: Sequence[int]) -> Moves:
    """Moves that give ``members`` equal shares, taking from whoever holds too many.

    A member gives up the partitions at the end of what it owns, so ranges stay
    as contiguous as they can; a member that is not in ``members`` gives up all.
    """
    if not members:
        raise ValueError("a shard keeps at least one member")
    want = _shares(members)
    have: dict[int, list[int]] = {m: [] for m in members}
    spare: list[int] = []
    for partition, owner in enumerate(table.owners):
        if owner in have:
            have[owner].append(partition)
        else:
            spare.append(partition)
    for member in sorted(have):
        extra = len(have[member]) - want[member]
        if extra > 0:
            spare.extend(have[member][-extra:])
            del have[member][-extra:]
    moves: Moves = {}
    spare.sort()
    for member in sorted(have):
        need = want[member] - len(have[member])
        for _ in range(need):
            moves[spare.pop(0)] = member
    return moves


def plan_add(table: RoutingTable, new: Iterable[int]) -> Moves:
    """Moves that bring ``new`` members in with equal shares."""
    added = [m for m in new if m not in table.members()]
    return _balance(table, table.members() + added)


def plan_remove(table: RoutingTable, gone: Iterable[int]) -> Moves:
    """Moves that hand the partitions of ``gone`` members to the others, evenly."""
    leaving = set(gone)
    return _balance(table, [m for m in table.members() if m not in leaving])


def plan_split(table: RoutingTable, member: int, into: tuple[int, int]) -> Moves:
    """Moves that give ``member``'s partitions to two new members, half each (a JOIN split)."""
    mine = table.partitions_of(member)
    half = (len(mine) + 1) // 2
    return {p: into[0] if i < half else into[1] for i, p in enumerate(mine)}


def batches(moves: Mapping[int, int], size: int) -> list[Moves]:
    """``moves`` cut into batches of at most ``size`` partitions, in partition order.

    Moving a large set in batches keeps the pause of each partition short
    (Megaphone, Hoffmann et al., VLDB 2019).
    """
    if size < 1:
        raise ValueError("a batch moves at least one partition")
    ordered = sorted(moves.items())
    return [dict(ordered[i : i + size]) for i in range(0, len(ordered), size)]
