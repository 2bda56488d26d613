"""The run folder on the master's disk: checked, locked for one run, cleared of old dead letters."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

from datablox.errors import RunError
from datablox.filenames import dead_letter_file

#: Held (flock) by the run that uses the folder, for as long as it runs.
LOCK_NAME = ".datablox-run.lock"

#: How a user names another run folder, from the command line or from Python.
_ANOTHER = "--run-dir on the command line, run_dir= in datablox.run()"


class RunFolder:
    """A run folder taken for one run; :meth:`release` lets the next run have it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: int | None = None

    @classmethod
    def take(cls, path: Path, elements: Iterable[str]) -> RunFolder:
        """Create ``path`` if needed, check it is writable, lock it and remove what an
        earlier run left in it that this one would append to: the dead-letter files of
        ``elements``. Raises :class:`RunError` when the folder is unusable or in use."""
        folder = cls(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(
                f"cannot use {path} as the run folder: {exc.strerror or exc}",
                f"choose a folder you can write to ({_ANOTHER})",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunError(
                f"the run folder {path} is in use by another run",
                f"wait for that run to end, or choose another run folder ({_ANOTHER})",
            ) from None
        folder._lock = fd
        for name in elements:
            try:
                (path / dead_letter_file(name)).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                folder.release()
                raise RunError(
                    f"cannot remove an earlier run's dead letters in {path}: {exc}",
                    f"choose another run folder ({_ANOTHER})",
                ) from None
        return folder

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
