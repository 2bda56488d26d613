"""File names made from element names: one path component, never too long for a file system."""

from __future__ import annotations

import glob
import hashlib
import os

#: Longest stem, in bytes (file systems allow 255 for a whole name).
MAX_STEM = 100


#: The run folder's sub-folder of dead letters, one file per element.
DEAD_LETTERS = "deadletter"


def dead_letter_file(element: str) -> str:
    """``element``'s dead-letter file, relative to the run folder."""
    return f"{DEAD_LETTERS}/{file_stem(element)}.jsonl"


def file_stem(name: str) -> str:
    """``name`` as one file-name component: a group's '/' becomes '__'; a name longer
    than :data:`MAX_STEM` bytes keeps its start and ends with a digest of the whole,
    so two long names that share a start still get two files."""
    safe = name.replace("/", "__")
    raw = safe.encode()
    if len(raw) <= MAX_STEM:
        return safe
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    head = raw[: MAX_STEM - len(digest) - 1].decode("utf-8", "ignore")
    return f"{head}-{digest}"


def input_files(pattern: str) -> tuple[list[str], str | None]:
    """The files ``pattern`` (a path, or a glob such as ``data/*.csv``) names, sorted, and
    when there are none, why: ``no file matches 'data/*.csv'``, ``file 'x' does not exist``."""
    if glob.has_magic(pattern):
        files = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        return files, None if files else f"no file matches '{pattern}'"
    if os.path.isfile(pattern):
        return [pattern], None
    what = "is a folder, not a file" if os.path.isdir(pattern) else "does not exist"
    return [], f"file '{pattern}' {what}"
