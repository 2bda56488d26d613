"""Key partitioning: crc32-based, stable across processes, 256 partitions in owner ranges."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zlib
from typing import Any

import pytest

from datablox.partition import PARTITIONS, KeyIndex, key_bytes, owner_of, partition_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mixed_keys() -> list[Any]:
    """About a thousand keys of every kind a record field can hold, and a few more."""
    keys: list[Any] = []
    keys += [f"k{i}" for i in range(300)]
    keys += [f"ключ-{i}-☃" for i in range(100)]
    keys += list(range(-100, 200))
    keys += [i / 8 for i in range(-40, 60)]
    keys += [2**63 - 1, -(2**63), 2**64, 2**70, 1e20, 1e-7, float("inf"), float("-inf")]
    keys += [True, False, None, "", "None", "True", b"", b"\x00\xff", b"bytes key"]
    keys += [(f"k{i}", i) for i in range(100)]
    keys += [[f"k{i}", [i, i + 0.5]] for i in range(50)]
    keys += [{"ra": i * 1.5, "dec": -i} for i in range(50)]
    return keys


PRINT_PARTITIONS = """
import json, pickle, sys
from datablox.partition import KeyIndex, partition_of
keys = pickle.load(sys.stdin.buffer)
print(json.dumps({"hash": hash("k0"), "partitions": [partition_of(k) for k in keys]}))
"""


def partitions_in_a_process(hash_seed: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PRINT_PARTITIONS],
        input=pickle.dumps(mixed_keys()),
        capture_output=True,
        timeout=30,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_partitions_agree_across_processes_with_different_hash_seeds() -> None:
    here = [partition_of(k) for k in mixed_keys()]
    one, two = partitions_in_a_process("1"), partitions_in_a_process("2")
    # the seeds took effect: Python's own hash() disagrees between the two processes
    assert one["hash"] != two["hash"]
    assert one["partitions"] == two["partitions"] == here


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        ("k0", 63),
        ("k1", 169),
        ("", 0),
        ("ümlaut", 160),
        (0, 33),
        (1, 183),
        (-1, 42),
        (42, 136),
        (1.5, 186),
        (True, 183),  # True == 1
        (False, 33),  # False == 0
        (None, 241),
        (b"abc", 194),
        (("a", 1), 161),
    ],
)
def test_known_partitions(key: Any, partition: int) -> None:
    assert partition_of(key) == partition


def test_partitions_are_crc32_of_the_utf8_key_for_strings() -> None:
    for key in ("k0", "station-42", "日本", "a b c"):
        assert partition_of(key) == zlib.crc32(key.encode("utf-8")) % 256


def test_equal_keys_share_a_partition() -> None:
    assert partition_of(1) == partition_of(1.0)
    assert partition_of(True) == partition_of(1) and partition_of(False) == partition_of(0)
    assert partition_of(0) == partition_of(-0.0)
    assert partition_of(10**20) == partition_of(1e20)
    assert partition_of(("a", 1)) == partition_of(["a", 1])
    assert partition_of("k0") == partition_of(b"k0")


def test_equal_maps_share_a_partition_whatever_their_field_order() -> None:
    """Two equal maps must give equal bytes (partition.key_bytes promises it for every key);
    field order is not part of a map's value, and JSON senders do not keep it stable."""
    a = {"ra": 10.5, "dec": -3}
    b = {"dec": -3, "ra": 10.5}
    assert a == b
    assert key_bytes(a) == key_bytes(b)
    assert partition_of(a) == partition_of(b)


def test_partitions_lie_in_range_and_all_are_used() -> None:
    assert PARTITIONS == 256
    seen = {partition_of(k) for k in mixed_keys()}
    assert seen <= set(range(256))
    assert {partition_of(f"key-{i}") for i in range(10000)} == set(range(256))


@pytest.mark.parametrize("partitions", [1, 2, 7, 16, 1000])
def test_partitions_of_a_smaller_or_larger_space(partitions: int) -> None:
    got = [partition_of(k, partitions) for k in mixed_keys()]
    assert all(0 <= p < partitions for p in got)
    assert got == [zlib.crc32(key_bytes(k)) % partitions for k in mixed_keys()]


@pytest.mark.parametrize("owners", [*range(1, 17), 3 * 17, 100, 255, 256])
def test_owners_get_contiguous_balanced_ranges_covering_every_partition(owners: int) -> None:
    owned = [owner_of(p, owners) for p in range(PARTITIONS)]
    assert owned[0] == 0 and owned[-1] == owners - 1
    # non-decreasing: each owner's partitions form one contiguous range
    assert owned == sorted(owned)
    assert set(owned) == set(range(owners))
    sizes = [owned.count(o) for o in range(owners)]
    assert max(sizes) - min(sizes) <= 1


def test_splitting_one_owner_moves_only_its_own_partitions() -> None:
    """Doubling the owners splits each range in two; no partition moves to a far owner."""
    for owners in (1, 2, 4, 8, 16):
        for p in range(PARTITIONS):
            assert owner_of(p, owners * 2) // 2 == owner_of(p, owners)


def test_a_key_index_hands_over_exactly_the_keys_of_the_partitions_asked() -> None:
    table = {f"k{i}": i for i in range(5000)}
    index = KeyIndex(table)
    wanted = {3, 77, 200}
    moved = index.take(table, wanted)
    assert set(moved) <= wanted
    for p, entries in moved.items():
        assert all(partition_of(k) == p for k in entries)
    taken = {k for entries in moved.values() for k in entries}
    assert taken == {f"k{i}" for i in range(5000) if partition_of(f"k{i}") in wanted}
    assert not taken & table.keys() and len(taken) + len(table) == 5000
    assert index.take(table, wanted) == {}  # nothing twice
    # the receiving side takes them in, and can hand them over again
    other: dict[str, int] = {}
    there = KeyIndex()
    there.put(other, moved)
    assert other == {k: int(k[1:]) for k in taken}
    assert there.take(other, wanted) == moved and other == {}
