"""FileCrawler: a source that walks a folder tree and emits one record per matching file."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from typing import Any

from datablox.element import Record, Source
from datablox.errors import ParameterError
from datablox.ports import Param, push_out

__all__ = ["FileCrawler"]


class FileCrawler(Source):
    """Walk a folder and emit a record per file whose name matches a pattern.

    Ports:
        out (push out): ``{"path": str, "name": str, "suffix": str, "size": int,
            "mtime": float}``. ``path`` is relative to ``root`` with ``/``
            separators; ``suffix`` is the last extension with its dot (``".csv"``)
            or ``""``; ``mtime`` is seconds since the epoch.

    Parameters:
        root (path, required): the folder to walk.
        pattern (str, "*"): shell pattern (fnmatch) matched against the file name.
        recursive (bool, true): descend into sub-folders.
        hidden (bool, false): include files and folders whose name starts with ``.``.

    Order: deterministic — entries are visited in sorted name order, each
    folder's contents where the folder sorts, so paths come out sorted by their
    components. Symbolic links to folders are not followed (no cycles).

    Bad input: a ``root`` that is not a folder stops the element at start. A
    folder that cannot be read, or a file that vanishes or cannot be
    examined while crawling, is logged and skipped.
    """

    resumable = True

    plain_records = True  # builds records from plain values, or passes them on
    ports = (
        push_out(
            "out",
            fields={"path": "str", "name": "str", "suffix": "str", "size": "int", "mtime": "float"},
        ),
    )
    params = (
        Param("root", "path", doc="folder to walk"),
        Param("pattern", "str", default="*", doc="fnmatch pattern on the file name"),
        Param("recursive", "bool", default=True, doc="descend into sub-folders"),
        Param("hidden", "bool", default=False, doc="include names starting with '.'"),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.root: str = params["root"]
        self.pattern: str = params["pattern"]
        self.recursive: bool = params["recursive"]
        self.hidden: bool = params["hidden"]
        if not os.path.isdir(self.root):
            what = "is a file" if os.path.exists(self.root) else "does not exist"
            raise ParameterError(
                f"FileCrawler: root '{self.root}' {what} (looked from {os.getcwd()})",
                "root",
                "root must be a folder; relative paths in a .topo resolve against its folder",
            )

    def generate(self) -> Iterator[Record | None]:
        yield from self._walk(self.root, "")

    def _walk(self, folder: str, prefix: str) -> Iterator[Record]:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.log(f"cannot read folder '{folder}', skipped: {exc.strerror or exc}")
            return
        for entry in entries:
            if not self.hidden and entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and not entry.is_file():
                    continue  # sockets, fifos, broken links: not files to process
                stat = None if is_dir else entry.stat()
            except OSError as exc:
                self.log(f"cannot examine '{entry.path}', skipped: {exc.strerror or exc}")
                continue
            if is_dir:
                if self.recursive:
                    yield from self._walk(entry.path, rel + "/")
            elif stat is not None and fnmatch.fnmatch(entry.name, self.pattern):
                yield {
                    "path": rel,
                    "name": entry.name,
                    "suffix": os.path.splitext(entry.name)[1],
                    "size": stat.st_size,
                    "mtime": stat.st_mtime,
                }
