"""The routing table of keyed shards (pure)."""

from __future__ import annotations

import pytest

from datablox.partition import PARTITIONS, owner_of
from datablox.shards.routing import (
    RoutingTable,
    batches,
    plan_add,
    plan_remove,
    plan_split,
)


def test_the_first_table_is_the_contiguous_layout_of_the_director() -> None:
    table = RoutingTable.initial([10, 11, 12])
    assert table.version == 0
    assert all(table.owner(p) == [10, 11, 12][owner_of(p, 3)] for p in range(PARTITIONS))
    assert table.counts() == {10: 86, 11: 85, 12: 85}


def test_adding_a_third_member_moves_only_what_it_takes() -> None:
    table = RoutingTable.initial([0, 1])
    moves = plan_add(table, [2])
    # re-slicing into three ranges would move 127 partitions
    assert len(moves) == 85
    assert set(moves.values()) == {2}
    after = table.moved(moves)
    assert after.version == 1
    assert sorted(after.counts().values()) == [85, 85, 86]
    # whoever kept a partition kept it
    assert all(after.owner(p) == table.owner(p) for p in range(PARTITIONS) if p not in moves)


@pytest.mark.parametrize("start,end", [(1, 2), (1, 8), (3, 4), (7, 8), (2, 12)])
def test_growing_one_member_at_a_time_moves_close_to_the_minimum(start: int, end: int) -> None:
    table = RoutingTable.initial(list(range(start)))
    for new in range(start, end):
        moves = plan_add(table, [new])
        # the new member's share: at most one partition more than an equal split
        assert len(moves) <= PARTITIONS // (new + 1) + 1
        table = table.moved(moves)
    counts = table.counts()
    assert set(counts) == set(range(end))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_removing_a_member_hands_its_partitions_to_the_others_evenly() -> None:
    table = RoutingTable.initial([0, 1, 2, 3])
    moves = plan_remove(table, [2])
    assert set(moves) == set(table.partitions_of(2))
    after = table.moved(moves)
    assert 2 not in after.counts()
    assert sorted(after.counts().values()) == [85, 85, 86]


def test_the_last_member_cannot_be_removed() -> None:
    with pytest.raises(ValueError):
        plan_remove(RoutingTable.initial([0]), [0])


def test_a_split_gives_half_of_a_members_partitions_to_each_new_one() -> None:
    table = RoutingTable.initial([0, 1])
    moves = plan_split(table, 1, (5, 6))
    after = table.moved(moves)
    assert after.counts() == {0: 128, 5: 64, 6: 64}
    assert table.diff(after) == moves


def test_moves_go_in_batches_in_partition_order() -> None:
    moves = {p: 9 for p in range(100, 0, -1)}
    parts = batches(moves, 16)
    assert [len(b) for b in parts] == [16] * 6 + [4]
    assert list(parts[0]) == list(range(1, 17))
    assert {p for b in parts for p in b} == set(moves)


def test_a_table_always_has_every_partition() -> None:
    with pytest.raises(ValueError):
        RoutingTable(0, (0,) * 10)
