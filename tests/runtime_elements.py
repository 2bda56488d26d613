"""Element classes used by the runtime tests (referenced as runtime_elements:Class)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from datablox import Element, Param, Source, push_in, push_out, query_in, query_out


class Numbers(Source):
    """Emits {"n": i} for i in range(count)."""

    resumable = True
    ports = (push_out("out", fields={"n": "int"}),)
    params = (
        Param("count", "int", 100),
        Param("start", "int", 0),
        Param("rate", "number|null", None),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.count, self.start, self.rate = params["count"], params["start"], params["rate"]
        self.total = self.count

    def generate(self) -> Iterator[dict[str, Any]]:
        began = time.monotonic()
        for i in range(self.start, self.start + self.count):
            if self.rate:
                ahead = began + (i - self.start) / self.rate - time.monotonic()
                if ahead > 0:
                    self.wait(ahead)
            yield {"n": i}


class Square(Element):
    """n → n*n; raises on n == fail_on."""

    ports = (push_in("in", fields={"n": "int"}), push_out("out", fields={"n": "int", "sq": "int"}))
    params = (Param("fail_on", "int|null", None),)
    cheap = True

    def on_start(self, params: dict[str, Any]) -> None:
        self.fail_on = params["fail_on"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        if record["n"] == self.fail_on:
            raise ValueError(f"refusing {record['n']}")
        self.emit({**record, "sq": record["n"] ** 2})


class Collect(Element):
    """Writes every record as a JSON line to ``path`` (sorted at the end)."""

    ports = (push_in("in"),)
    params = (Param("path", "str"), Param("delay", "number", 0.0))

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.delay = params["delay"]
        self.records: list[Any] = []

    def on_batch(self, port: str, records: list[Any]) -> None:
        if self.delay:
            time.sleep(self.delay)  # simulates a slow sink so backpressure builds
        self.records.extend(records)

    def snapshot(self) -> Any:
        return self.records

    def restore(self, state: Any) -> None:
        self.records = state

    def on_finish(self) -> None:
        rows = sorted(self.records, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
        self.path.write_bytes(
            b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows)
        )


class CrashOnce(Element):
    """Passes records on; kills its process at record ``at`` (once, or ``always`` from then on)."""

    ports = (push_in("in"), push_out("out"))
    params = (
        Param("marker", "str"),
        Param("at", "int", 10),
        Param("always", "bool", False),
        Param("exit", "int|null", None),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.marker = Path(params["marker"])
        self.at = params["at"]
        self.always = params["always"]
        self.exit = params["exit"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        crash = (
            record["n"] >= self.at
            if self.always
            else (record["n"] == self.at and not self.marker.exists())
        )
        if crash:
            self.marker.write_text("crashed")
            if self.exit is not None:
                sys.exit(self.exit)  # as user code may
            os._exit(9)
        self.emit(record)


class BadStart(Element):
    """Fails in on_start."""

    ports = (push_in("in"),)

    def on_start(self, params: dict[str, Any]) -> None:
        raise FileNotFoundError("catalog.csv is missing")

    def on_record(self, port: str, record: Any) -> None:
        pass


class Table(Element):
    """Answers {"n": i} with {"double": 2i}; stores nothing."""

    ports = (query_in("get"),)

    def on_query(self, port: str, request: Any) -> Any:
        if request["n"] < 0:
            raise ValueError("negative")
        return {"double": request["n"] * 2}


class Asker(Element):
    """For each batch, asks all queries at once (many in flight) and emits the answers."""

    ports = (push_in("in"), push_out("out"), query_out("ask"))

    def on_batch(self, port: str, records: list[Any]) -> None:
        pending = [(r, self.ask_async({"n": r["n"]})) for r in records]
        for record, handle in pending:
            self.emit({**record, **handle.result(10.0)})


class Stamp(Element):
    """Changes the records it receives in place (sets ``by`` to its own name)."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        record["by"] = self.name
        self.emit(record)


class Ping(Source):
    """Emits one record, then keeps running until ``marker`` exists (at most 30 s)."""

    ports = (push_out("out"),)
    params = (Param("marker", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.marker = Path(params["marker"])

    def generate(self) -> Iterator[dict[str, Any] | None]:
        yield {"n": 0}
        deadline = time.monotonic() + 30
        while not self.marker.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the record was not delivered while the source ran")
            self.wait(0.01)
            yield None


class Touch(Element):
    """Creates ``marker`` when a record arrives."""

    ports = (push_in("in"),)
    params = (Param("marker", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.marker = Path(params["marker"])

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.marker.write_text("seen")


class Unencodable(Element):
    """Passes records on, but replaces record n == 3 by one that no codec can encode."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit({"n": record["n"], "bad": {1, 2}} if record["n"] == 3 else record)


class WrongPort(Element):
    """Emits on a port it does not declare (a mistake the runtime must name)."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record, port="outt")


class BrokenInit(Element):
    """Raises while being created."""

    ports = (push_in("in"),)

    def __init__(self) -> None:
        raise RuntimeError("no licence file")

    def on_record(self, port: str, record: Any) -> None:
        pass


class CrashingSource(Source):
    """Numbers 0..count-1 at ``rate``/s; the first incarnation dies at ``crash_at``."""

    ports = (push_out("out"),)
    params = (
        Param("count", "int"),
        Param("rate", "number"),
        Param("crash_at", "int"),
        Param("marker", "str"),
        Param("resumable", "bool", True),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.count, self.rate = params["count"], params["rate"]
        self.crash_at, self.marker = params["crash_at"], Path(params["marker"])
        self.total = self.count
        type(self).resumable = params["resumable"]

    def generate(self) -> Iterator[dict[str, Any]]:
        began = time.monotonic()
        for i in range(self.count):
            if i == self.crash_at and not self.marker.exists():
                self.marker.write_text("crashed")
                os._exit(9)
            ahead = began + i / self.rate - time.monotonic()
            if ahead > 0:
                self.wait(ahead)
            yield {"n": i}


class CrashingListSource(CrashingSource):
    """CrashingSource through ``generate_batches``: lists of 3 records in the first
    incarnation, of 1,000 after the crash, so a restore skips into the middle of a list
    (3 does not divide 1,000)."""

    def generate_batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        began = time.monotonic()
        step = 1000 if self.marker.exists() else 3
        for first in range(0, self.count, step):
            if first >= self.crash_at and not self.marker.exists():
                self.marker.write_text("crashed")
                os._exit(9)
            ahead = began + first / self.rate - time.monotonic()
            if ahead > 0:
                self.wait(ahead)
            yield [{"n": i} for i in range(first, min(first + step, self.count))]


class WaitsLong(Source):
    """Emits ``count`` records, waits ``seconds`` (writing to ``path`` whether the wait
    ended early), then emits ``count`` more."""

    resumable = True
    ports = (push_out("out"),)
    params = (Param("count", "int"), Param("seconds", "number"), Param("path", "str"))

    def on_start(self, params: dict[str, Any]) -> None:
        self.count, self.seconds = params["count"], params["seconds"]
        self.path = Path(params["path"])

    def generate(self) -> Iterator[dict[str, Any] | None]:
        for n in range(self.count):
            yield {"n": n}
        deadline = time.monotonic() + self.seconds
        self.wait(self.seconds)
        self.path.write_text("early" if time.monotonic() < deadline else "full")
        for n in range(self.count, 2 * self.count):
            yield {"n": n}


class AskEachOther(Element):
    """Adds ``other``: what the element on its ``ask`` port answers for the record's id.
    Answers ``get`` with the id times two. With ``crash_marker``, its process exits with
    code 9 (once: the marker file records it) at the first query it gets after its
    ``on_finish``. Ports: in, out, ask (query out), get (query in)."""

    ports = (push_in("in"), push_out("out"), query_out("ask"), query_in("get"))
    params = (Param("crash_marker", "str|null", None),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.marker = Path(params["crash_marker"]) if params["crash_marker"] else None
        self.ended = False

    def on_record(self, port: str, record: Any) -> None:
        record["other"] = self.ask(record["id"])
        self.emit(record)

    def on_finish(self) -> None:
        self.ended = True

    def on_query(self, port: str, request: Any) -> Any:
        if self.ended and self.marker is not None and not self.marker.exists():
            self.marker.write_text("crashed")
            os._exit(9)
        return request * 2
