"""The checkpoint store: element snapshots and completed-checkpoint manifests on disk.

Layout under a run folder (one per topology run)::

    checkpoints/
      elements/ELEMENT/PARTITION/ID.snap    one element's (or partition's) snapshot
      completed/ID.json                     the manifest of a completed checkpoint
      LATEST                                the id of the newest completed checkpoint

``PARTITION`` is ``all`` for an element's whole state; keyed state may later
be written per partition so a single partition can be handed to another
member. Every file is written atomically: to a temporary name, fsynced, then
renamed over its final name (and the folder fsynced), so a crash at any moment
leaves either the old file or the new one, never a torn one. A snapshot is
only used once a manifest names it, and a manifest is only written when every
element has acknowledged its snapshot, so a crash during a checkpoint leaves
the previous completed checkpoint in charge.

Snapshots are pickles written without pickle's memo (ten times faster for
large states): objects an element's state shares are restored as separate
copies. A state that refers to itself falls back to an ordinary pickle.
"""

from __future__ import annotations

import gc
import io
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from datablox.filenames import file_stem

#: The whole state of an element (as opposed to one of its partitions).
WHOLE = "all"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_transfer(path: Path, data: bytes) -> None:
    """Write ``data`` for another process to read now (a partition move): renamed into place,
    not fsynced — a crash restores the whole run from its last checkpoint anyway."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class CheckpointStore:
    """Reads and writes the checkpoints of one run folder."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.root = Path(run_dir) / "checkpoints"

    # ---- element snapshots ---------------------------------------------------
    def snapshot_path(self, element: str, checkpoint: int | str, partition: str = WHOLE) -> Path:
        """``checkpoint``: a checkpoint id, or ``final-EPOCH`` for a final snapshot."""
        return self.root / "elements" / file_stem(element) / partition / f"{checkpoint}.snap"

    def write_snapshot(
        self, element: str, checkpoint: int | str, state: Any, partition: str = WHOLE
    ) -> tuple[str, int]:
        """Store one snapshot; returns its path (relative to the store) and size in bytes."""
        data = dumps(state)
        path = self.snapshot_path(element, checkpoint, partition)
        write_atomic(path, data)
        return str(path.relative_to(self.root)), len(data)

    def transfer_path(self, move: int, element: str, to: str) -> Path:
        """Where ``element`` leaves the state of partitions moving to member ``to``."""
        return self.root / "moves" / f"{move}-{file_stem(element)}-to-{file_stem(to)}.snap"

    def read_snapshot(self, relative: str) -> Any:
        data = (self.root / relative).read_bytes()
        with no_gc():
            return pickle.loads(data)

    # ---- completed checkpoints -----------------------------------------------
    def complete(self, checkpoint: int, files: dict[str, str]) -> None:
        """Record checkpoint ``checkpoint`` as complete: ``files`` maps element -> snapshot."""
        manifest = {"id": checkpoint, "elements": files}
        write_atomic(self.root / "completed" / f"{checkpoint}.json", orjson.dumps(manifest))
        write_atomic(self.root / "LATEST", str(checkpoint).encode())

    def latest(self) -> dict[str, Any] | None:
        """The manifest of the newest completed checkpoint, or None."""
        try:
            checkpoint = int((self.root / "LATEST").read_text())
        except (OSError, ValueError):
            return None
        manifest: dict[str, Any] = orjson.loads(
            (self.root / "completed" / f"{checkpoint}.json").read_bytes()
        )
        return manifest

    def prune(self, keep: dict[str, str]) -> None:
        """Remove snapshot files and manifests that the latest manifest no longer needs."""
        wanted = {self.root / rel for rel in keep.values()}
        latest = self.root / "LATEST"
        try:
            newest = int(latest.read_text())
        except (OSError, ValueError):
            return
        for path in (self.root / "elements").glob("*/*/*.snap"):
            # final snapshots (final-EPOCH) may be named by a checkpoint still to complete
            if path not in wanted and 0 <= _id(path) < newest:
                path.unlink(missing_ok=True)
        for path in (self.root / "completed").glob("*.json"):
            if _id(path) < newest:
                path.unlink(missing_ok=True)


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic collector: (un)pickling a large state would trigger it again and again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def dumps(state: Any) -> bytes:
    """Pickle ``state``; without the memo when it does not refer to itself."""
    with no_gc():
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.fast = True
        try:
            pickler.dump(state)
            return buffer.getvalue()
        except (RecursionError, ValueError):
            return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def _id(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return -1
