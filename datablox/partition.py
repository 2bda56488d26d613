"""Stable key partitioning: 256 partitions from crc32 of the key's canonical bytes.

Never Python's ``hash()``: it is salted per process, so two processes would
disagree about where a key lives.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

PARTITIONS = 256


def key_bytes(key: Any) -> bytes:
    """The canonical bytes of a key; equal keys give equal bytes in every process."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bool):
        # True == 1 and False == 0: equal keys must land in the same partition
        return b"1" if key else b"0"
    if key is None:
        return b"None"
    if isinstance(key, int):
        return str(key).encode()
    if isinstance(key, float):
        return (str(int(key)) if key.is_integer() else repr(key)).encode()
    if isinstance(key, (list, tuple)):
        return b"\x1f".join(key_bytes(k) for k in key)
    if isinstance(key, dict):
        # equal maps are equal whatever their insertion order
        items = sorted((str(k), v) for k, v in key.items())
        return b"\x1e".join(k.encode("utf-8") + b"\x1d" + key_bytes(v) for k, v in items)
    return repr(key).encode("utf-8")


def partition_of(key: Any, partitions: int = PARTITIONS) -> int:
    """The partition (0..partitions-1) that ``key`` belongs to."""
    return zlib.crc32(key_bytes(key)) % partitions


def owner_of(partition: int, owners: int, partitions: int = PARTITIONS) -> int:
    """Which of ``owners`` contiguous ranges of partitions holds ``partition``.

    Contiguous ranges (not modulo) so that a shard can later split one owner's
    range in two without moving the other owners' partitions.
    """
    return partition * owners // partitions


class KeyIndex:
    """The keys of a keyed state by partition, kept up as keys are added.

    Handing over a few partitions then costs what they hold, not a scan of the
    whole state: a member holding a million keys exports 2 partitions of them
    in the time those ~8,000 keys take.
    """

    __slots__ = ("parts",)

    def __init__(self, keys: Iterable[Any] = ()) -> None:
        self.parts: dict[int, set[Any]] = {}
        for key in keys:
            self.add(key)

    def add(self, key: Any) -> None:
        """Note a key new to the state."""
        p = partition_of(key)
        found = self.parts.get(p)
        if found is None:
            self.parts[p] = {key}
        else:
            found.add(key)

    def take(self, table: dict[Any, Any], partitions: Iterable[int]) -> dict[int, dict[Any, Any]]:
        """Remove and return the entries of ``table`` in ``partitions``, by partition."""
        moving: dict[int, dict[Any, Any]] = {}
        for p in partitions:
            keys = self.parts.pop(p, None)
            if keys:
                moving[p] = {key: table.pop(key) for key in keys if key in table}
        return moving

    def put(self, table: dict[Any, Any], moved: dict[int, dict[Any, Any]]) -> None:
        """Take into ``table`` the entries :meth:`take` returned elsewhere."""
        for p, entries in moved.items():
            table.update(entries)
            found = self.parts.get(int(p))
            if found is None:
                self.parts[int(p)] = set(entries)
            else:
                found.update(entries)
