"""Links into a shard: one logical connection spread over the shard's member processes.

A sender into a shard holds one of these per connection, in place of a single
link; behind it is one :class:`RemoteLink` per member (each its own physical
connection, with its own sequence numbers).

- :class:`KeyedLink` routes each record by the partition of its key
  (256 partitions from crc32, ``datablox.partition``) through the shard's
  versioned routing table. A move pauses some partitions: their records are
  held here, a MARKER frame tells the old owner that nothing more of them
  comes from this sender, and when the master switches the table they go on
  to the new owner, in the order they were emitted.
- :class:`PoolLink` hands each batch to a member with room in its queue
  (a full queue means a busy member), so load, not a fixed rotation,
  decides where records go.

Members come and go at run time (``add_member``/``remove_member``): a new
member gets a new link, a removed one gets its end-of-stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import zmq

from datablox.element import MISSING, key_value
from datablox.partition import partition_of
from datablox.runtime.links import RemoteLink

#: Batches queued at each end of a connection into a pool member: short, so that a
#: member's full queue means it is busy and a backlog stays with the sender.
POOL_HWM = 1
#: Records in one batch to a pool member, at most: a batch is one member's turn.
POOL_BATCH = 128
#: Kernel socket buffer (bytes) at each end of a connection into a pool member.
POOL_SOCKBUF = 8 * 1024

#: The partition of a held record that goes to every member (``broadcast``).
BROADCAST = -1
#: Waits, serving the process, until the condition holds.
WaitUntil = Callable[[Callable[[], bool]], Any]


class ShardLink:
    """What keyed and pool links share: the members' links and their life cycle."""

    def __init__(self, conn_id: int, shard: str) -> None:
        #: the logical connection (the one in the topology)
        self.conn_id = conn_id
        self.shard = shard
        #: member number -> its link
        self.members: dict[int, RemoteLink] = {}
        self.closed = False

    @property
    def sent(self) -> int:
        return sum(link.sent for link in self.members.values())

    @sent.setter
    def sent(self, value: int) -> None:
        """Counters are the members' links' own (restored per physical connection)."""

    def append(self, record: Any) -> None:
        raise NotImplementedError

    def extend(self, records: list[Any]) -> None:
        raise NotImplementedError

    def broadcast(self, record: Any) -> None:
        """``record`` to every member, after what was sent to each before."""
        for link in self.members.values():
            link.append(record)

    def physical(self) -> list[RemoteLink]:
        return list(self.members.values())

    def add_member(self, member: int, link: RemoteLink) -> None:
        self.members[member] = link

    def remove_member(self, member: int) -> RemoteLink | None:
        """End the connection to ``member`` (its end-of-stream) and forget it."""
        link = self.members.pop(member, None)
        if link is not None:
            link.close()
        return link

    def flush(self) -> None:
        for link in self.members.values():
            link.flush()

    def barrier(self, checkpoint: int) -> None:
        for link in self.members.values():
            link.barrier(checkpoint)

    def close(self) -> None:
        self.closed = True
        for link in self.members.values():
            link.close()


#: key values whose partition a KeyedLink remembers (a bounded cache, cleared when full)
PARTITION_CACHE = 65_536


class KeyedLink(ShardLink):
    """Routes records by key partition through the routing table; partitions can pause."""

    def __init__(
        self,
        conn_id: int,
        shard: str,
        key: Sequence[str],
        owners: Sequence[int],
        version: int,
        on_bad: Callable[[Any, str], None],
        wait_until: WaitUntil,
    ) -> None:
        super().__init__(conn_id, shard)
        self.key = list(key)
        self.owners = list(owners)
        self.version = version
        self.on_bad = on_bad
        self.wait_until = wait_until
        #: partitions being moved: their records wait in ``held``
        self.paused: set[int] = set()
        self.held: list[tuple[int, Any]] = []
        #: partition of recently seen key values (cleared when it reaches PARTITION_CACHE)
        self.parts: dict[Any, int] = {}

    def append(self, record: Any) -> None:
        self.extend([record])

    def extend(self, records: list[Any]) -> None:
        key, owners, members, paused = self.key, self.owners, self.members, self.paused
        parts = self.parts
        touched: dict[int, list[Any]] = {}
        for record in records:
            value = key_value(record, key)
            if value is MISSING:
                self.on_bad(
                    record,
                    f"record has no shard key field {', '.join(key)} (shard '{self.shard}')",
                )
                continue
            kind = type(value)
            if kind is str or kind is int:  # exact types: True == 1 yet partitions apart
                p = parts.get(value, -1)
                if p < 0:
                    p = partition_of(value)
                    if len(parts) >= PARTITION_CACHE:
                        parts.clear()
                    parts[value] = p
            else:
                p = partition_of(value)
            if p in paused:
                self.held.append((p, record))
                continue
            owner = owners[p]
            found = touched.get(owner)
            if found is None:
                touched[owner] = [record]
            else:
                found.append(record)
        for owner, part in touched.items():
            members[owner].extend(part)

    def pause(self, partitions: Sequence[int], move: int) -> list[int]:
        """Hold the records of ``partitions`` from now on; send each of their current
        owners a MARKER for ``move`` after what was sent to it before. Returns those owners."""
        self.paused.update(partitions)
        old = sorted({self.owners[p] for p in partitions})
        for member in old:
            link = self.members.get(member)
            if link is not None:
                link.marker(move)
        return old

    def broadcast(self, record: Any) -> None:
        """To every member; while partitions are paused it waits behind their held records
        (their new owner must get it after them)."""
        if self.paused:
            self.held.append((BROADCAST, record))
        else:
            super().broadcast(record)

    def switch(self, owners: Sequence[int], version: int) -> None:
        """The new table is in force: held records go to their new owners, in order."""
        self.owners = list(owners)
        self.version = version
        held, self.held = self.held, []
        self.paused = set()
        run: list[Any] = []
        for partition, record in held:
            if partition == BROADCAST:
                self.extend(run)
                run = []
                super().broadcast(record)
            else:
                run.append(record)
        if run:
            self.extend(run)

    def close(self) -> None:
        if self.paused:
            # records of moving partitions wait for the switch; end only after it
            self.wait_until(lambda: not self.paused)
        super().close()


class PoolLink(ShardLink):
    """Hands each batch to a member whose queue has room.

    The member is chosen when a batch starts (whether the last one was sent
    because it was full or because the loop flushed it on time): the next in
    turn whose socket takes a message now, or, if every member is full, the
    next in turn. Queues into a pool member are kept short (:data:`POOL_HWM`,
    :data:`POOL_SOCKBUF`), so a full one means a busy member, and a backlog
    waits here, where a member added later can take its share.
    """

    def __init__(self, conn_id: int, shard: str) -> None:
        super().__init__(conn_id, shard)
        self.order: list[int] = []
        self.at = 0
        self.current: RemoteLink | None = None

    def add_member(self, member: int, link: RemoteLink) -> None:
        super().add_member(member, link)
        self.order = sorted(self.members)

    def remove_member(self, member: int) -> RemoteLink | None:
        link = super().remove_member(member)
        self.order = sorted(self.members)
        self.at = 0
        if link is self.current:
            self.current = None
        return link

    def _choose(self) -> RemoteLink:
        """The next member in turn whose socket takes a batch now; the next in turn if none does."""
        n = len(self.order)
        for step in range(1, n + 1):
            link = self.members[self.order[(self.at + step) % n]]
            if not link.sending and int(link.sock.get(zmq.EVENTS)) & zmq.POLLOUT:
                self.at = (self.at + step) % n
                return link
        self.at = (self.at + 1) % n
        return self.members[self.order[self.at]]

    def append(self, record: Any) -> None:
        self.extend([record])

    def extend(self, records: list[Any]) -> None:
        at, n = 0, len(records)
        while at < n:
            link = self.current
            if link is None or not link.buf:  # a new batch: to a member with room
                link = self.current = self._choose()
            room = max(1, link.batch_size - len(link.buf))
            link.extend(records[at : at + room] if at or room < n else records)
            at += room


def physical(links: list[Any]) -> list[Any]:
    """The links that carry batches: a shard link's member links in its place."""
    found: list[Any] = []
    for link in links:
        if isinstance(link, ShardLink):
            found.extend(link.members.values())
        else:
            found.append(link)
    return found
