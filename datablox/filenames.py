"""File names made from element names: one path component, never too long for a file system."""

from __future__ import annotations

import hashlib

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
