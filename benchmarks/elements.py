"""Element classes used only by the benchmark."""

from __future__ import annotations

import operator
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from datablox import Element, Param, Source, push_in, push_out
from datablox.elements.join import JoinMember


class LatencySink(Element):
    """Records ``now - t_emit`` of every record and writes p50/p99/max (ms) to ``path``.

    Ports: push in ``in`` (records need a ``t_emit`` field from Generate(stamp=true)).
    Parameters: ``path`` (str) where the JSON result is written at the end.
    Bad input: a record without ``t_emit`` is counted in ``missing``.

    The probe stays light, so that it does not add to what it measures: ``now`` is
    taken once per batch, and Generate stamps a whole list with one time, so the
    records of a batch are counted per distinct stamp (in C, by ``Counter``) and kept
    as (latency, records) pairs; the percentiles are those of every record.
    """

    ports = (push_in("in"),)
    params = (Param("path", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.latencies: list[tuple[float, int]] = []
        self.missing = 0

    def on_batch(self, port: str, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        stamps = Counter(map(_T_EMIT, records))
        self.missing += stamps.pop(None, 0)
        self.latencies.extend((now - t, n) for t, n in stamps.items())

    def on_finish(self) -> None:
        self.path.write_bytes(orjson.dumps(latency_figures(self.latencies, self.missing)))


_T_EMIT = operator.methodcaller("get", "t_emit")


def latency_figures(latencies: list[tuple[float, int]], missing: int) -> dict[str, Any]:
    """p50/p99/max (ms) of records given as (latency in s, how many records had it)."""
    pairs = sorted(latencies)
    n = sum(count for _, count in pairs)

    def pct(p: float) -> float:
        k = min(n - 1, int(p * n))  # the record at this rank, counting from 0
        seen = 0
        for latency, count in pairs:
            seen += count
            if seen > k:
                return latency * 1000
        return 0.0

    return {
        "count": n,
        "missing": missing,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pairs[-1][0] * 1000 if n else 0.0,
    }


class ArrivalSink(Element):
    """Notes when the first batch reached this process: ``FOLDER/<pid>`` holds ``time.time()``.

    Ports: push in ``in`` (any records). Parameters: ``folder`` (str).
    """

    ports = (push_in("in"),)
    params = (Param("folder", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.folder = Path(params["folder"])
        self.noted = False

    def on_batch(self, port: str, records: list[dict[str, Any]]) -> None:
        if not self.noted:
            self.noted = True
            (self.folder / str(os.getpid())).write_text(repr(time.time()))


class FeedThenIdle(Source):
    """Emits ``{"id", "key", "t_emit"}`` at ``rate`` records/s for ``seconds``, then stays open
    (emitting nothing) for ``idle`` seconds. With ``prefill`` > 0 it first emits that many
    records with distinct keys k0.., unpaced; then keys are drawn from the same range.

    Ports: push out ``out``. Parameters: ``rate``, ``seconds``, ``idle``, ``prefill``.
    """

    ports = (push_out("out"),)
    params = (
        Param("rate", "number"),
        Param("seconds", "number"),
        Param("idle", "number", 0.0),
        Param("prefill", "int", 0),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.rate = float(params["rate"])
        self.seconds = float(params["seconds"])
        self.idle = float(params["idle"])
        self.prefill = int(params["prefill"])

    def generate(self) -> Iterator[dict[str, Any] | None]:
        keys = max(1, self.prefill)
        for i in range(self.prefill):
            yield {"id": i, "key": f"k{i}", "t_emit": time.monotonic()}
        start = time.monotonic()
        i = 0
        while True:
            now = time.monotonic()
            if now - start >= self.seconds:
                break
            ahead = start + i / self.rate - now
            if ahead > 0.001:
                self.wait(ahead)
                yield None  # hand control back: a stop during the wait emits nothing more
                continue
            yield {
                "id": self.prefill + i,
                "key": f"k{(i * 7919) % keys}",
                "t_emit": time.monotonic(),
            }
            i += 1
        end = time.monotonic() + self.idle
        while time.monotonic() < end:
            self.wait(min(0.2, end - time.monotonic()))
            yield None


class StampSink(Element):
    """Writes ``[t_emit, latency ms, key, count]`` of every record whose id is ``>= skip`` to
    ``path`` (JSON lines, when the inputs end; ``count`` is null when the record has none).

    Ports: push in ``in``. Parameters: ``path`` (str), ``skip`` (int).
    """

    ports = (push_in("in"),)
    params = (Param("path", "str"), Param("skip", "int", 0))

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.skip = params["skip"]
        self.rows: list[tuple[float, float, str, int | None]] = []

    def on_batch(self, port: str, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        skip = self.skip
        self.rows.extend(
            (r["t_emit"], (now - r["t_emit"]) * 1000.0, r["key"], r.get("count"))
            for r in records
            if r["id"] >= skip
        )

    def on_finish(self) -> None:
        self.path.write_bytes(b"\n".join(orjson.dumps(r) for r in self.rows))


class Slow(Element):
    """Waits ``ms`` per record, as a remote call would (``cpu``: burns the CPU instead)."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("ms", "number", 1.0), Param("cpu", "bool", False))

    def on_start(self, params: dict[str, Any]) -> None:
        self.seconds = params["ms"] / 1000.0
        self.cpu = params["cpu"]

    def on_batch(self, port: str, records: list[Any]) -> None:
        for _ in records:
            if self.cpu:
                end = time.perf_counter() + self.seconds
                while time.perf_counter() < end:
                    pass
            else:
                time.sleep(self.seconds)  # the element's work: a remote call's wait
        self.emit_many(records)


class CostlyJoin(JoinMember):
    """A JOIN member whose enrichment also burns ``ms`` of CPU per stream record (a
    costly computation on the matched row)."""

    params = (*JoinMember.params, Param("ms", "number", 0.5))  # type: ignore[assignment]

    def on_start(self, params: dict[str, Any]) -> None:
        super().on_start(params)
        self.seconds = params["ms"] / 1000.0

    def _enrich(self, records: list[Any]) -> None:
        end = time.perf_counter() + self.seconds * len(records)
        while time.perf_counter() < end:
            pass
        super()._enrich(records)


class ReplaceAt(Element):
    """Passes records on; when record ``at`` goes by, copies ``source`` over ``target``
    (a new dataset version appears mid-stream)."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("at", "int"), Param("source", "path"), Param("target", "path"))

    def on_start(self, params: dict[str, Any]) -> None:
        self.at, self.source, self.target = params["at"], params["source"], params["target"]

    def on_batch(self, port: str, records: list[Any]) -> None:
        if any(r["id"] == self.at for r in records):
            tmp = f"{self.target}.tmp"
            shutil.copyfile(self.source, tmp)
            os.replace(tmp, self.target)
        self.emit_many(records)


class VersionSink(Element):
    """Writes ``[id, t_emit, latency ms, dataset_version]`` of every record to ``path`` (JSON
    lines, when the inputs end). Records need ``t_emit`` (Generate(stamp=true))."""

    ports = (push_in("in"),)
    params = (Param("path", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.rows: list[tuple[int, float, float, int]] = []

    def on_batch(self, port: str, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        self.rows.extend(
            (r["id"], r["t_emit"], (now - r["t_emit"]) * 1000.0, r["dataset_version"])
            for r in records
        )

    def on_finish(self) -> None:
        self.path.write_bytes(b"\n".join(orjson.dumps(r) for r in self.rows))


class Arrivals(Element):
    """Writes ``[[time.monotonic(), records], ...]`` of every batch that arrives to ``path``
    (JSON, when the inputs end): a throughput measured where the records come out."""

    ports = (push_in("in"),)
    params = (Param("path", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.batches: list[tuple[float, int]] = []

    def on_batch(self, port: str, records: list[Any]) -> None:
        self.batches.append((time.monotonic(), len(records)))

    def on_finish(self) -> None:
        self.path.write_bytes(orjson.dumps(self.batches))
