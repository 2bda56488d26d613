"""Helpers shared by the built-in elements: bad-input reporting, file globs, JSON lines."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from datablox.element import Element
from datablox.errors import ParameterError
from datablox.ports import type_name_of
from datablox.runtime.handling import loud


class Rejects:
    """Sends bad inputs to the dead-letter file and logs the first few of them."""

    def __init__(self, element: Element) -> None:
        self.element = element
        self.count = 0

    def __call__(self, record: Any, error: str, **context: Any) -> None:
        self.count += 1
        suffix = loud(self.count)
        if suffix is not None:
            where = " ".join(f"{k}={v}" for k, v in context.items())
            self.element.log(f"{error} [{where}]; sent to dead letters{suffix}")
        self.element.dead_letter(record, error, **context)


def resolve_files(cls_name: str, pattern: str) -> list[str]:
    """The files ``pattern`` names (a path or a glob), sorted; raise naming it when none."""
    if glob.has_magic(pattern):
        files = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not files:
            raise ParameterError(
                f"{cls_name}: no file matches '{pattern}' (looked from {os.getcwd()})",
                "path",
                "relative paths in a .topo resolve against the .topo file's folder",
            )
        return files
    if not os.path.isfile(pattern):
        what = "is a folder, not a file" if os.path.isdir(pattern) else "does not exist"
        raise ParameterError(
            f"{cls_name}: file '{pattern}' {what} (looked from {os.getcwd()})",
            "path",
            "relative paths in a .topo resolve against the .topo file's folder",
        )
    return [pattern]


def iter_json_lines(path: str) -> Iterator[tuple[int, str, Any, str | None]]:
    """``(line number, raw text, object, error)`` per non-blank line of a JSON-lines file.

    ``error`` is None when the line is a JSON object; otherwise it says what is wrong
    and ``object`` is None. Reading is binary so orjson parses without a decode copy.
    """
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a UTF-8 byte order mark, as Windows tools write it
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                # orjson's own "line 2 column 1" counts within this one line, which
                # reads like a file position; report the column in the line instead.
                column = min(exc.pos, len(line.rstrip())) + 1
                yield lineno, _raw(line), None, f"malformed JSON at column {column}: {exc.msg}"
                continue
            if not isinstance(obj, dict):
                kind = type_name_of(obj)
                yield lineno, _raw(line), None, f"line holds a JSON {kind}, not an object"
                continue
            yield lineno, "", obj, None


def _raw(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


def check_output(cls_name: str, path: str) -> None:
    """Raise ParameterError unless ``path`` can be written; touch nothing that exists."""
    target = Path(path)
    for folder in [target.parent, *target.parent.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise ParameterError(
                    f"{cls_name}: cannot write '{path}': '{folder}' is a file, not a folder",
                    "path",
                    "choose a path whose folders are folders",
                )
            if not os.access(folder, os.W_OK | os.X_OK) and folder == target.parent:
                raise ParameterError(f"{cls_name}: cannot write '{path}': no permission", "path")
            break
    if target.is_dir():
        raise ParameterError(f"{cls_name}: cannot write '{path}': it is a folder", "path")
    if target.exists() and not os.access(target, os.W_OK):
        raise ParameterError(f"{cls_name}: cannot write '{path}': no permission", "path")


def open_output(path: str, append: bool = False) -> Any:
    """Open ``path`` for binary writing, creating its parent folders."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab" if append else "wb")
