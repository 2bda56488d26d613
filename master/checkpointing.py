"""When to take checkpoints and which one is complete: the master's pure bookkeeping.

No sockets and no clock inside: the run passes ``now`` in and sends what
comes back. Checkpoint ids only grow, across restores too, so the snapshot
files of a checkpoint that never completed can never be mistaken for a later
one's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckpointStats:
    completed: int = 0
    restores: int = 0
    #: seconds from asking for a checkpoint to its completion, per completed checkpoint
    durations: list[float] = field(default_factory=list)
    #: bytes written by the last completed checkpoint (snapshots taken for it)
    last_bytes: int = 0


@dataclass
class Coordinator:
    """Checkpoints of one run: at most one in progress, one every ``interval`` seconds."""

    #: the elements that take part now (shard members come and go)
    elements: frozenset[str]
    #: seconds between checkpoints; 0 = only the one taken at start
    interval: float
    #: the newest completed checkpoint (0: the one every element takes at start)
    completed: int = 0
    #: element -> snapshot file of the newest completed checkpoint
    files: dict[str, str] = field(default_factory=dict)
    pending: int | None = None
    acks: dict[str, str] = field(default_factory=dict)
    #: element -> its final snapshot (outputs ended): it stands for every later checkpoint
    finals: dict[str, str] = field(default_factory=dict)
    pending_bytes: int = 0
    asked_at: float = 0.0
    last_done_at: float = 0.0
    next_id: int = 1
    stats: CheckpointStats = field(default_factory=CheckpointStats)
    #: the elements the newest completed checkpoint holds (what a restore starts)
    restorable_elements: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.restorable_elements = self.restorable_elements or self.elements

    def start(self, now: float) -> None:
        """The data starts flowing now (checkpoint 0 was taken at start)."""
        self.last_done_at = now

    def due(self, now: float) -> int | None:
        """A new checkpoint to ask for now, if one is due."""
        if self.interval <= 0 or self.pending is not None:
            return None
        if now - self.last_done_at < self.interval:
            return None
        self.pending = self.next_id
        self.next_id += 1
        self.acks = {}
        self.pending_bytes = 0
        self.asked_at = now
        return self.pending

    def on_ack(self, element: str, checkpoint: int, file: str, size: int, now: float) -> bool:
        """An element has written its snapshot; True when that completes the checkpoint."""
        if checkpoint == 0:
            # taken at start, before the data flows: complete per element
            if element in self.restorable_elements:
                self.files.setdefault(element, file)
            return False
        if checkpoint != self.pending:
            return False
        self.acks[element] = file
        self.pending_bytes += size
        return self._complete(now)

    def on_final(self, element: str, file: str, now: float) -> bool:
        """An element's outputs ended; True when that completes the pending checkpoint."""
        self.finals[element] = file
        return self.pending is not None and self._complete(now)

    def _complete(self, now: float) -> bool:
        assert self.pending is not None
        checkpoint = self.pending
        if not self.elements <= self.acks.keys() | self.finals.keys():
            return False
        self.completed = checkpoint
        everything = {**self.finals, **self.acks}
        self.files = {e: f for e, f in everything.items() if e in self.elements}
        self.restorable_elements = self.elements
        self.pending = None
        self.last_done_at = now
        self.stats.completed += 1
        self.stats.durations.append(now - self.asked_at)
        self.stats.last_bytes = self.pending_bytes
        return True

    def restorable(self) -> bool:
        """True when every element has a snapshot to be restored from."""
        return self.restorable_elements <= self.files.keys()

    def restore(self, now: float) -> tuple[int, dict[str, str]]:
        """Abandon the checkpoint in progress; the one to restore from and its files."""
        self.pending = None
        self.acks = {}
        self.finals = {}  # the restored elements say again when their outputs end
        self.last_done_at = now
        self.stats.restores += 1
        return self.completed, dict(self.files)
