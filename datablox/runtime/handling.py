"""Calling element hooks safely: one bad record goes to the dead-letter file, not down the run."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from datablox.element import Element
from datablox.errors import DatabloxError
from datablox.runtime.context import ElementContext

#: Errors logged in full per element before only every 1000th is logged.
LOUD_ERRORS = 10


def error_text(exc: BaseException) -> str:
    """``Type: message`` with the innermost frame of user code, for logs and dead letters."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return f"{type(exc).__name__}: {exc}{where}"


class DeadLetterFile:
    """Appends dead letters as JSON lines, one file per element, under ``folder``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._files: dict[str, Any] = {}
        self.paths: dict[str, str] = {}

    def write(self, element: str, record: Any, error: str, context: dict[str, Any]) -> None:
        fh = self._files.get(element)
        if fh is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / (element.replace("/", "__") + ".jsonl")
            fh = open(path, "ab")  # noqa: SIM115 - closed in close()
            self._files[element] = fh
            self.paths[element] = str(path)
        entry = {"element": element, "error": error, **context, "record": record}
        fh.write(orjson.dumps(entry, default=repr) + b"\n")
        fh.flush()

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()


class MemoryDeadLetters:
    """Keeps dead letters in a list (used by the test harness)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def write(self, element: str, record: Any, error: str, context: dict[str, Any]) -> None:
        self.entries.append({"element": element, "error": error, **context, "record": record})


class Handler:
    """Delivers batches and queries to one element, isolating per-record failures."""

    def __init__(
        self, element: Element, ctx: ElementContext, log: Callable[[str, str], None]
    ) -> None:
        self.element = element
        self.ctx = ctx
        self._log = log
        self._per_record = type(element).on_batch is Element.on_batch
        self.errors = 0
        self.received = 0

    def _failed(self, port: str, record: Any, exc: BaseException) -> None:
        self.reject(port, record, error_text(exc))

    def reject(self, port: str, record: Any, text: str) -> None:
        """Log (rate-limited) and dead-letter one record that failed on ``port``."""
        self.errors += 1
        if self.errors <= LOUD_ERRORS or self.errors % 1000 == 0:
            suffix = "" if self.errors <= LOUD_ERRORS else f" ({self.errors} errors so far)"
            self._log(
                self.element.name,
                f"error on port '{port}': {text}; record sent to dead letters{suffix}",
            )
        self.ctx.dead_letter(self.element.name, record, text, {"port": port})

    def batch(self, port: str, records: list[Any]) -> None:
        self.received += len(records)
        element = self.element
        if self._per_record:
            on_record = element.on_record
            for record in records:
                try:
                    on_record(port, record)
                except DatabloxError:
                    raise
                except Exception as exc:
                    self._failed(port, record, exc)
        else:
            try:
                element.on_batch(port, records)
            except DatabloxError:
                raise
            except Exception as exc:
                for record in records:
                    self._failed(port, record, exc)

    def query(self, port: str, request: Any) -> tuple[bool, Any]:
        """(ok, answer-or-error-text) for one query."""
        try:
            return True, self.element.on_query(port, request)
        except Exception as exc:
            text = error_text(exc)
            self._log(self.element.name, f"error answering query on port '{port}': {text}")
            return False, text
