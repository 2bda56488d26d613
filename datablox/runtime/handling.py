"""Calling element hooks safely: one bad record goes to the dead-letter file, not down the run."""

from __future__ import annotations

import math
import os
import reprlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from datablox.element import Element
from datablox.errors import ElementError
from datablox.filenames import DEAD_LETTERS, dead_letter_file
from datablox.runtime.clock import Account, Clock
from datablox.runtime.context import ElementContext

#: Errors logged in full per element before only every 1000th is logged.
LOUD_ERRORS = 10
#: Nesting shown in a dead letter before the rest is cut to text.
MAX_SHOWN_DEPTH = 100


def error_text(exc: BaseException) -> str:
    """``Type: message`` with the innermost frame of user code, for logs and dead letters."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return f"{type(exc).__name__}: {exc}{where}"


def named(exc: ElementError, element: str, where: str) -> ElementError:
    """An ElementError raised in ``element``'s code, saying so and ``where`` ("port 'in'",
    "in on_finish"); errors the runtime raises, and those of a fused neighbour, name
    their element already."""
    if exc.element is not None:
        return exc  # a fused neighbour's, named already
    text = str(exc)
    found = exc
    if not text.startswith("element '"):
        found = ElementError(f"element '{element}' {where}: {text}")
    found.element = element
    return found


def loud(count: int) -> str | None:
    """Whether the ``count``-th error of one element is logged: the suffix to log it with.

    The first :data:`LOUD_ERRORS` are logged in full, then every 1000th, so one
    broken input cannot flood the run log; ``None`` means stay quiet.
    """
    if count <= LOUD_ERRORS:
        return ""
    if count % 1000 == 0:
        return f" ({count} errors so far)"
    return None


def _shown(value: Any, depth: int = 0) -> Any:
    """``value`` made JSON-safe for a dead letter: what cannot be written is shown as text."""
    if depth > MAX_SHOWN_DEPTH:
        return reprlib.repr(value)
    if isinstance(value, dict):
        return {
            k if isinstance(k, str) else repr(k): _shown(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_shown(v, depth + 1) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return reprlib.repr(value)


def dead_letter_line(entry: dict[str, Any]) -> bytes:
    """One JSON line for a dead letter; never fails, whatever the record holds."""
    try:
        return orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS, default=repr) + b"\n"
    except (TypeError, ValueError, RecursionError):
        pass
    record = entry.get("record")
    try:
        shown = _shown(record)
        note = "record shown with values JSON cannot hold as text"
        line = orjson.dumps({**entry, "record": shown, "record_note": note})
    except Exception:
        try:
            text = reprlib.repr(record)
        except Exception:
            text = f"<a {type(record).__name__} that cannot be shown>"
        line = orjson.dumps({**entry, "record": text, "record_note": "record shown as text"})
    return line + b"\n"


def blame(record: Any, port: str, text: str) -> str:
    """The dead-letter reason for a received ``record`` that failed with ``text``: when
    it is not a map, the fault is the sender's, and the reason says so."""
    if isinstance(record, dict):
        return text
    return (
        f"the record is a {type(record).__name__}, not a map: the element that sends to "
        f"'{port}' emitted it ({text})"
    )


class DeadLetterFile:
    """Appends dead letters as JSON lines, one file per element, in a run folder."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.folder = self.run_dir / DEAD_LETTERS
        self._files: dict[str, Any] = {}
        self.paths: dict[str, str] = {}
        #: dead letters that could not be written (disk full, permissions)
        self.unwritten = 0

    def write(self, element: str, record: Any, error: str, context: dict[str, Any]) -> None:
        entry = {"element": element, "error": error, **context, "record": record}
        try:
            fh = self._files.get(element)
            if fh is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self._path(element)
                fh = open(path, "ab")  # noqa: SIM115 - closed in close()
                self._files[element] = fh
                self.paths[element] = str(path)
            fh.write(dead_letter_line(entry))
            fh.flush()
        except OSError as exc:
            # the record is still counted as a dead letter; the run goes on
            self.unwritten += 1
            if self.unwritten == 1:
                print(
                    f"[{element}] cannot write dead letters under {self.folder}: {exc}; "
                    "dead letters are counted but not kept",
                    file=sys.stderr,
                    flush=True,
                )

    def _path(self, element: str) -> Path:
        return self.run_dir / dead_letter_file(element)

    def position(self, element: str) -> int:
        """The length of ``element``'s dead-letter file (0 when it has none)."""
        fh = self._files.get(element)
        if fh is not None:
            return int(fh.tell())
        try:
            return self._path(element).stat().st_size
        except OSError:
            return 0

    def truncate(self, element: str, length: int) -> None:
        """Cut ``element``'s dead-letter file back to ``length`` bytes (after a restore)."""
        path = self._path(element)
        try:
            if path.stat().st_size > length:
                os.truncate(path, length)
        except OSError:
            pass

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
    """Delivers batches and queries to one element, isolating per-record failures.

    Time spent in the element's hooks is charged to ``work`` on ``clock``.
    """

    def __init__(
        self,
        element: Element,
        ctx: ElementContext,
        log: Callable[[str, str], None],
        clock: Clock | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.element = element
        self.ctx = ctx
        self._log = log
        #: says something the user should know that is not an error (once per kind)
        self._warn = warn or (lambda text: log(element.name, text))
        self._returned = False
        self._per_record = type(element).on_batch is Element.on_batch
        self.clock = clock or Clock()
        self.blocked = Account()
        self.work = Account(self.blocked)
        self.errors = 0
        self.received = 0

    def _returned_value(self, port: str, hook: str) -> None:
        """``hook`` returned something: the runtime ignores it, so say so, once."""
        self._returned = True
        self._warn(
            f"element '{self.element.name}' port '{port}': {hook} returned a value, which "
            "is ignored; call self.emit(record) to send a record on"
        )

    def _failed(self, port: str, record: Any, exc: BaseException) -> None:
        self.reject(port, record, blame(record, port, error_text(exc)))

    def reject(self, port: str, record: Any, text: str) -> None:
        """Log (rate-limited) and dead-letter one record that failed on ``port``."""
        self.errors += 1
        suffix = loud(self.errors)
        if suffix is not None:
            self._log(
                self.element.name,
                f"error on port '{port}': {text}; record sent to dead letters{suffix}",
            )
        self.ctx.dead_letter(self.element.name, record, text, {"port": port})

    def batch(self, port: str, records: list[Any]) -> None:
        self.received += len(records)
        element = self.element
        clock = self.clock
        previous = clock.enter(self.work)
        try:
            if self._per_record:
                on_record = element.on_record
                for record in records:
                    try:
                        if on_record(port, record) is not None and not self._returned:
                            self._returned_value(port, "on_record")
                    except ElementError as exc:
                        raise named(exc, element.name, f"port '{port}'") from None
                    except Exception as exc:
                        self._failed(port, record, exc)
            else:
                on_batch: Callable[[str, list[Any]], Any] = element.on_batch  # a user's may return
                try:
                    if on_batch(port, records) is not None and not self._returned:
                        self._returned_value(port, "on_batch")
                except ElementError as exc:
                    raise named(exc, element.name, f"port '{port}'") from None
                except Exception as exc:
                    for record in records:
                        self._failed(port, record, exc)
            self.ctx.flush()
        finally:
            clock.leave(previous)

    def query(self, port: str, request: Any) -> tuple[bool, Any]:
        """(ok, answer-or-error-text) for one query."""
        previous = self.clock.enter(self.work)
        try:
            answer = self.element.on_query(port, request)
            self.ctx.flush()
            return True, answer
        except ElementError as exc:
            raise named(exc, self.element.name, f"port '{port}'") from None
        except Exception as exc:
            text = error_text(exc)
            self._log(self.element.name, f"error answering query on port '{port}': {text}")
            return False, text
        finally:
            self.clock.leave(previous)
