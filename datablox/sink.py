"""FileSink: the base class for sinks that write one file, exactly once across crashes."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from datablox.element import Element
from datablox.errors import ElementError

__all__ = ["FileSink"]


class FileSink(Element):
    """A sink writing one output file that holds each record once, whatever crashes.

    In ``on_start`` call ``self.open_sink(path, append)``; write with
    ``self.write(data)``; close with ``self.close_sink()`` (in ``on_finish``).
    The file is opened only when the first bytes are written (or the inputs
    end), so a run that fails to start leaves an existing file untouched;
    without ``append`` it is then replaced.

    At each checkpoint the file is flushed and synced and its length becomes
    part of the snapshot. A restored sink opens the file without truncating
    it as a whole, cuts it back to that length and appends from there, so what
    it wrote after the checkpoint, which is replayed, is not written twice.
    A subclass with state of its own extends ``snapshot``/``restore`` and
    calls these (``{"file": super().snapshot(), ...}``).
    """

    _sink_path: str
    _sink_append: bool
    _sink_base: int
    _sink_fh: Any = None

    def open_sink(self, path: str, append: bool = False) -> None:
        self._sink_path = path
        self._sink_append = append
        self._sink_fh = None
        try:
            self._sink_base = os.path.getsize(path) if append else 0
        except OSError:
            self._sink_base = 0

    def sink_file(self) -> Any:
        """The open file (opened now if it was not)."""
        if self._sink_fh is None:
            Path(self._sink_path).parent.mkdir(parents=True, exist_ok=True)
            fh = open(self._sink_path, "ab")  # noqa: SIM115 - locked before it is cut
            self._lock(fh)
            if not self._sink_append:
                fh.truncate(0)
            self._sink_fh = fh
        return self._sink_fh

    def _lock(self, fh: Any) -> None:
        """Hold an exclusive lock on the file while writing it: a second writer (another
        run, or another element) fails at once instead of interleaving lines with ours."""
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ElementError(
                f"element '{self.name}': {self._sink_path} is being written by another "
                "element or run; give each writer its own file"
            ) from None

    def write(self, data: bytes) -> None:
        fh = self.sink_file()
        fh.write(data)
        fh.flush()

    def close_sink(self) -> None:
        fh = self.sink_file()
        if not fh.closed:
            fh.close()

    def snapshot(self) -> Any:
        fh = self._sink_fh
        if fh is None or fh.closed:
            if fh is not None:
                return {"length": os.path.getsize(self._sink_path)}
            return {"length": self._sink_base}
        fh.flush()
        os.fsync(fh.fileno())
        return {"length": fh.tell()}

    def restore(self, state: Any) -> None:
        length = int(state["length"])
        path = Path(self._sink_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._sink_fh is not None and not self._sink_fh.closed:
            self._sink_fh.close()  # its lock would refuse ours
        fh = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - never truncates
        self._lock(fh)
        fh.truncate(length)
        fh.seek(length)
        self._sink_fh = fh
