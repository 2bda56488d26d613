"""ENRICHMENT, the JOIN family's dataset side: the dataset, by partition, to the JOIN.

Reads the dataset and sends each row to the JOIN member owning its partition.

Each row goes tagged with its dataset version (see :func:`dataset_record`);
after the last row of a version every member gets one end-of-version record.
"""

from __future__ import annotations

import csv
import os
import time
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from datablox.element import Element, Record, Source
from datablox.elements._support import Rejects, iter_json_lines, repeated_names
from datablox.elements.join import (
    FIELDS,
    dataset_record,
    join_fields,
    pairing_problem,
    row_problem,
    version_end,
)
from datablox.errors import ParameterError, QueryError, QueryTimeout
from datablox.ports import Param, ParamProblem, push_in, push_out, query_out

__all__ = ["Enrichment", "EnrichmentRows"]


class Enrichment(Source):
    """ENRICHMENT: read the dataset and send its rows, by partition, to the JOIN members.

    Ports:
        out (push out): tagged rows and end-of-version records, to the JOIN's ``dataset``.
        stream (query out): asks PREJOIN whether the stream has ended (when watching).
        fetch (query out): with ``source="query"``, asks for the dataset; the answer
            is a list of rows.

    Parameters:
        source (str, "file"): "file" (read ``path``) or "query" (ask on ``fetch``).
        path (path|null, null): a JSON-lines file, or CSV when the name ends in ``.csv``
            (CSV values are strings).
        key (str or list, required): the stream's join field(s).
        dataset_key (str or list, required): the dataset's join field(s), compared
            pairwise with ``key``.
        watch (number, 0): seconds between checks for a changed file (or a different
            answer); each change is a new dataset version. 0 reads once.

    Bad input: a row without the join fields or with a list or map in one, or a
    malformed line, goes to the dead letters with its file and line. A missing file
    stops the element at start.
    """

    reads = ("path",)
    ports = (
        push_out("out", doc="tagged dataset rows, to the JOIN"),
        query_out("stream", doc="asks PREJOIN whether the stream has ended"),
        query_out("fetch", doc="asks for the dataset (source='query')", when={"source": "query"}),
    )
    params = (
        Param("source", "str", "file", choices=("file", "query")),
        Param("path", "path|null", None, doc="the dataset file (JSON lines or CSV)"),
        FIELDS,
        Param("dataset_key", "any", doc="the dataset's join field, or a list of them"),
        Param(
            "watch", "number", 0.0, doc="seconds between checks for a new version; 0: once", least=0
        ),
    )

    @staticmethod
    def check_params(params: dict[str, Any]) -> list[ParamProblem]:
        return pairing_problem(
            params, "key", "dataset_key", "give dataset_key one field for each field of key"
        )

    def on_start(self, params: dict[str, Any]) -> None:
        self.source = params["source"]
        self.path = params["path"]
        self.on = join_fields(params["key"], "key")
        self.dataset_on = join_fields(params["dataset_key"], "dataset_key")
        for problem in self.check_params(params):  # the rule check applies, again
            raise ParameterError(problem.message, problem.param)
        if self.source == "file" and not self.path:
            raise ParameterError("Enrichment: source='file' needs path", "path")
        if self.source == "file" and not os.path.isfile(self.path):
            raise ParameterError(f"Enrichment: dataset file '{self.path}' does not exist", "path")
        self.watch = float(params["watch"])
        #: the version being (or last) sent, what it was read from, the rows of it sent
        #: so far and whether its end went out: a restore resumes exactly there
        self.version = 0
        self.stamp: Any = None
        self.sent = 0
        self.complete = True
        #: the watched file has gone (the version sent stays)
        self.gone = False
        self.reject = Rejects(self)

    def snapshot(self) -> Any:
        return {
            "version": self.version,
            "stamp": self.stamp,
            "sent": self.sent,
            "complete": self.complete,
        }

    def restore(self, state: Any) -> None:
        self.version, self.stamp = int(state["version"]), state["stamp"]
        self.sent, self.complete = int(state["sent"]), bool(state["complete"])

    def generate(self) -> Iterator[Record | None]:
        while True:
            rows, stamp = self._read()
            if stamp != self.stamp or not self.complete:
                skip = 0
                if stamp == self.stamp:
                    skip = self.sent  # restored in the middle of this version: go on
                else:
                    self.version, self.stamp, self.sent = self.version + 1, stamp, 0
                self.complete = False
                yield from self._send(rows, skip)
                self.complete = True
                self.emit_all(version_end(self.version, self.sent))
                self.log(f"dataset version {self.version}: {self.sent:,} rows")
            if self.watch <= 0 or self._stream_ended():
                return
            until = time.monotonic() + self.watch
            while time.monotonic() < until:
                self.wait(until - time.monotonic())  # may end early for a checkpoint
                yield None

    def _send(self, rows: list[tuple[Any, dict[str, Any]]], skip: int) -> Iterator[Record]:
        n = 0
        for row, context in rows:
            problem = row_problem(row, self.dataset_on)
            if problem is not None:
                if n >= skip:
                    self.reject(row, problem, **context)
                continue
            n += 1
            if n <= skip:
                continue
            self.sent = n
            yield dataset_record(row, self.version, self.on, self.dataset_on)

    def _read(self) -> tuple[list[tuple[Any, dict[str, Any]]], Any]:
        """The dataset's rows (with where each came from) and a stamp that changes with it."""
        if self.source == "query":
            rows = self.ask({"dataset": True}, port="fetch", timeout=60.0)
            if not isinstance(rows, list):
                raise ValueError(f"the dataset query answered {type(rows).__name__}, not a list")
            return [(row, {"row": i}) for i, row in enumerate(rows)], zlib.crc32(
                orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)
            )
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.stamp is None or not self.complete:
                raise  # no whole version to keep
            # gone while watched (often a moment, while an editor or a copy replaces it):
            # the JOIN keeps the version it has until a file is there again
            if not self.gone:
                self.gone = True
                self.log(
                    f"dataset file '{self.path}' is gone; version {self.version} stays "
                    "until a file is there again"
                )
            return [], self.stamp
        if self.gone:
            self.gone = False
            self.log(f"dataset file '{self.path}' is back")
        stamp = [st.st_mtime_ns, st.st_size]
        if stamp == self.stamp and self.complete:
            return [], stamp  # unchanged: not read again
        found: list[tuple[Any, dict[str, Any]]] = []
        if self.path.endswith(".csv"):
            # utf-8-sig: a byte order mark (as Excel writes) is not part of the first name
            with open(self.path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                repeated = repeated_names(list(reader.fieldnames or []))
                if repeated:
                    # a row holds one value per name: a later column's would replace the first's
                    raise ValueError(
                        f"the header of {self.path} names a column more than once: {repeated}"
                    )
                for lineno, row in enumerate(reader, 2):
                    found.append((dict(row), {"file": self.path, "line": lineno}))
            return found, stamp
        for lineno, raw, obj, error in iter_json_lines(self.path):
            if error is not None:
                self.reject(raw, error, file=self.path, line=lineno)
            else:
                found.append((obj, {"file": self.path, "line": lineno}))
        return found, stamp

    def _stream_ended(self) -> bool:
        try:
            return bool(self.ask({"ended": True}, port="stream", timeout=10.0))
        except (QueryError, QueryTimeout):
            return True


class EnrichmentRows(Element):
    """ENRICHMENT for a dataset another element pushes: all that arrives on ``rows`` is one
    version, complete when the rows' inputs end.

    Ports:
        rows (push in): dataset rows.
        out (push out): tagged rows and the end-of-version record, to the JOIN.

    Parameters:
        key (str or list, required): the stream's join field(s).
        dataset_key (str or list, required): the dataset's join field(s).

    Bad input: a row without the join fields, or with a list or map in one, goes to
    the dead letters.
    """

    ports = (push_in("rows", doc="dataset rows"), push_out("out", doc="tagged rows"))
    params = (FIELDS, Param("dataset_key", "any", doc="the dataset's join field(s)"))

    def on_start(self, params: dict[str, Any]) -> None:
        self.on = join_fields(params["key"], "key")
        self.dataset_on = join_fields(params["dataset_key"], "dataset_key")
        self.sent = 0
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        out = []
        for row in records:
            problem = row_problem(row, self.dataset_on)
            if problem is not None:
                self.reject(row, problem, port=port)
                continue
            out.append(dataset_record(row, 1, self.on, self.dataset_on))
        self.sent += len(out)
        self.emit_many(out)

    def snapshot(self) -> Any:
        return self.sent

    def restore(self, state: Any) -> None:
        self.sent = int(state)

    def on_finish(self) -> None:
        self.emit_all(version_end(1, self.sent))
        self.log(f"dataset: {self.sent:,} rows")
