"""File sources and sinks: JSON lines in and out, CSV in."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from datablox.element import Record, Source
from datablox.elements._support import (
    Rejects,
    check_output,
    iter_json_lines,
    repeated_names,
    resolve_files,
)
from datablox.elements.sources import Pacer
from datablox.errors import ParameterError
from datablox.ports import Param, push_in, push_out
from datablox.sink import FileSink

__all__ = ["CsvSource", "JsonLinesSink", "JsonLinesSource"]


class JsonLinesSource(Source):
    """Read records from JSON-lines files, one JSON object per line.

    Ports:
        out (push out): each line's object, as written (no fields declared).

    Parameters:
        path (path, required): a file, or a glob such as ``"data/*.jsonl"``
            (``**`` recurses); matching files are read in sorted order.
        rate (number|null, null): records per second at most (null: as fast as it can),
            to replay a file at a pace.

    Bad input: blank lines are skipped. A malformed line, a line holding a
    JSON value that is not an object, or one holding an integer beyond 64 bits
    (outside -2**63 to 2**64-1: orjson would read it as a float, losing digits)
    goes to the dead letters as its raw text with ``file`` and ``line``
    (1-based); reading goes on. A path that names no
    file stops the element at start with an error naming the path.
    """

    resumable = True

    plain_records = True  # builds records from plain values, or passes them on
    reads = ("path",)
    ports = (push_out("out"),)
    params = (
        Param("path", "path", doc="a JSON-lines file or a glob of them"),
        Param("rate", "number|null", None, doc="records per second at most", above=0),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.files = resolve_files("JsonLinesSource", params["path"])
        rate = params["rate"]
        self.rate: float | None = None if rate is None else float(rate)
        #: records emitted so far: a restore goes on after them (reading, not pacing, the
        #: ones before)
        self.done = 0
        self.reject = Rejects(self)

    def snapshot(self) -> Any:
        return self.done

    def restore(self, state: Any) -> None:
        self.done = int(state)

    def generate(self) -> Iterator[Record | None]:
        skip, seen = self.done, 0
        pacer = None if self.rate is None else Pacer(self.rate, time.monotonic())
        for path in self.files:
            for lineno, raw, obj, error in iter_json_lines(path):
                if error is not None:
                    if seen >= skip:
                        self.reject(raw, error, file=path, line=lineno)
                    continue
                seen += 1
                if seen <= skip:
                    continue
                while pacer is not None and (
                    wait := pacer.step(time.monotonic(), seen - skip - 1)[0]
                ):
                    self.wait(wait)
                    # back to the runtime after each wait: a stop ends the source
                    # before this record, a checkpoint is taken before it
                    yield None
                self.done = seen
                yield obj


_dumps = orjson.dumps
_KEYS = orjson.OPT_NON_STR_KEYS


class JsonLinesSink(FileSink):
    """Write each record as one JSON line.

    Ports:
        in (push in): any records.

    Parameters:
        path (path, required): the output file; parent folders are created.
        append (bool, false): add to the file instead of replacing it.

    Bad input: a record that cannot be written as JSON (bytes, sets, integers
    beyond 64 bits: possible with the msgpack codec) goes to the dead letters;
    the rest of its batch is written. Non-string map keys are written as
    strings. The file is opened (and, without ``append``, replaced) only when
    the first batch arrives or the inputs end, so a run that fails to start
    leaves an existing file as it was. It is flushed after every batch and
    closed when the inputs end. After a crash it is cut back to its length at
    the last checkpoint and the replayed records are appended, so each record
    is written once (``datablox.FileSink``).
    """

    ports = (push_in("in"),)
    writes = ("path",)
    params = (
        Param("path", "path", doc="output file; parent folders are created"),
        Param("append", "bool", default=False, doc="append instead of replacing"),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.path: str = params["path"]
        self.append: bool = params["append"]
        check_output("JsonLinesSink", self.path)
        self.open_sink(self.path, self.append)
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        try:
            data = b"\n".join([_dumps(r, option=_KEYS) for r in records])
        except (TypeError, ValueError):
            data = self._encode_each(port, records)
        # Flushed per batch (not per record): readers of a long run see whole batches.
        self.write(data + b"\n" if data else b"")

    def _encode_each(self, port: str, records: list[Record]) -> bytes:
        lines = []
        for record in records:
            try:
                lines.append(_dumps(record, option=_KEYS))
            except (TypeError, ValueError) as exc:
                self.reject(record, f"cannot write the record as JSON: {exc}", port=port)
        return b"\n".join(lines)

    def on_finish(self) -> None:
        self.close_sink()


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("write true/false, yes/no or 1/0")


_CONVERTERS["bool"] = _to_bool


class CsvSource(Source):
    """Read records from CSV files, one record per row.

    Ports:
        out (push out): one map per row, column name -> value; values are
            strings unless ``types`` converts them.

    Parameters:
        path (path, required): a file or a glob; matching files are read in sorted order.
        delimiter (str, ","): the field separator (one character).
        header (bool, true): the first row of each file names the columns.
        columns (list|null, null): column names; required when ``header`` is
            false, and replaces the header's names when given with one.
        types (map, {}): column -> ``"int"``, ``"float"``, ``"bool"`` or
            ``"str"``. An empty cell in a converted column becomes null.

    Bad input: a row with the wrong number of fields, or a value that fails
    its conversion, goes to the dead letters as the list of its fields with
    ``file`` and ``line`` (1-based, where the row starts); reading goes on.
    Blank lines are skipped. A path naming no file, an unknown type name, a
    ``types`` column that is not a column, or a column name given twice (in
    ``columns``, or in the first file's header) stop the element at start; a
    later file whose header names a column twice stops it when reached, before
    any of that file's rows.
    """

    resumable = True

    plain_records = True  # builds records from plain values, or passes them on
    reads = ("path",)
    ports = (push_out("out"),)
    params = (
        Param("path", "path", doc="a CSV file or a glob of them"),
        Param("delimiter", "str", default=",", doc="field separator, one character"),
        Param("header", "bool", default=True, doc="first row names the columns"),
        Param("columns", "list|null", default=None, doc="column names (needed without header)"),
        Param("types", "map", default={}, doc='column -> "int", "float", "bool" or "str"'),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.files = resolve_files("CsvSource", params["path"])
        self.delimiter: str = params["delimiter"]
        self.header: bool = params["header"]
        self.columns: list[str] | None = params["columns"]
        self.types: dict[str, str] = dict(params["types"])
        self.reject = Rejects(self)
        if len(self.delimiter) != 1:
            raise ParameterError(
                f"CsvSource: delimiter must be one character, got {self.delimiter!r}", "delimiter"
            )
        if not self.header and not self.columns:
            raise ParameterError(
                "CsvSource: header=false needs columns",
                "columns",
                'name the columns, e.g. columns=["id", "name", "mag"]',
            )
        if self.columns and (repeated := repeated_names(self.columns)):
            raise ParameterError(
                f"CsvSource: the columns parameter names a column more than once: {repeated}",
                "columns",
                "give each column its own name",
            )
        for column, kind in self.types.items():
            if kind not in _CONVERTERS:
                raise ParameterError(
                    f"CsvSource: unknown type {kind!r} for column '{column}'",
                    "types",
                    "types are: " + ", ".join(_CONVERTERS),
                )
        # Check type names against the first file's columns now rather than
        # failing halfway through a run.
        self._names(self.files[0], self._first_row(self.files[0]))

    def _first_row(self, path: str) -> list[str] | None:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # Excel writes a BOM
            for row in csv.reader(fh, delimiter=self.delimiter):
                if row:
                    return row
        return None

    def _names(self, path: str, header_row: list[str] | None) -> list[str]:
        names = self.columns or [n.strip() for n in header_row or []]
        if not self.columns and (repeated := repeated_names(names)):
            # a record holds one value per name: the later column's would replace the first's
            raise ParameterError(
                f"CsvSource: the header of {path} names a column more than once: {repeated}",
                "path",
                "rename the columns in the file, or name them all with columns=[...]",
            )
        unknown = [c for c in self.types if c not in names]
        if unknown:
            raise ParameterError(
                f"CsvSource: types names column(s) {unknown} that {path} does not have",
                "types",
                "columns are: " + ", ".join(names),
            )
        return names

    def generate(self) -> Iterator[Record | None]:
        for path in self.files:
            yield from self._read(path)

    def _read(self, path: str) -> Iterator[Record]:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # Excel writes a BOM
            reader = csv.reader(fh, delimiter=self.delimiter)
            names: list[str] | None = None if self.header else self._names(path, None)
            convert = [(n, _CONVERTERS[t]) for n, t in self.types.items() if t != "str"]
            last_line = 0
            for row in reader:
                # csv counts physical lines, so a quoted field spanning lines
                # still reports the line where its row starts.
                lineno, last_line = last_line + 1, reader.line_num
                if not row:
                    continue
                if names is None:
                    names = self._names(path, row)
                    continue
                if len(row) != len(names):
                    self.reject(
                        row,
                        f"row has {len(row)} fields, expected {len(names)}",
                        file=path,
                        line=lineno,
                    )
                    continue
                record: Record = dict(zip(names, row))
                try:
                    for name, fn in convert:
                        text = record[name]
                        record[name] = fn(text) if text.strip() else None
                except ValueError as exc:
                    kind = self.types[name]
                    why = f" ({exc})" if kind == "bool" else ""
                    self.reject(
                        row,
                        f"column '{name}': cannot convert {text!r} to {kind}{why}",
                        file=path,
                        line=lineno,
                    )
                    continue
                yield record
