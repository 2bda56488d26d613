"""Element classes of the join tests (referenced as join_elements:Class)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.elements import ReplaceAt  # noqa: F401  (the tests name it join_elements:ReplaceAt)
from datablox import Element, Param, Source, push_in, push_out
from datablox.elements.join import JoinMember
from datablox.ports import query_in
from tests.test_join import dataset


class DyingJoin(JoinMember):
    """A JOIN member whose process kills itself (SIGKILL) in the middle of its first
    export of partitions in a run; the ``flag`` file marks that it happened."""

    params = (*JoinMember.params, Param("flag", "path"))

    def on_start(self, params: dict[str, Any]) -> None:
        super().on_start(params)
        self.flag = Path(params["flag"])

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        state = super().export_partitions(partitions, partition_of)
        if not self.flag.exists():
            self.flag.write_text(f"{self.name} {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)
        return state


class SlowJoin(JoinMember):
    """A JOIN member that takes ``ms`` per stream record, so records queue up before it; it
    writes how many it enriched from rows kept after an early export to
    ``folder/<member>`` when it finishes."""

    params = (*JoinMember.params, Param("ms", "number"), Param("folder", "path"))

    def on_start(self, params: dict[str, Any]) -> None:
        super().on_start(params)
        self.seconds = params["ms"] / 1000.0
        self.folder = Path(params["folder"])
        self.from_kept = 0

    def _enrich(self, records: list[Any]) -> None:
        time.sleep(self.seconds * len(records))  # a slow member, so records queue up
        super()._enrich(records)

    def _enrich_kept(self, records: list[Any]) -> list[Any]:
        rest = super()._enrich_kept(records)
        self.from_kept += len(records) - len(rest)
        return rest

    def on_finish(self) -> None:
        super().on_finish()
        (self.folder / self.name).write_text(str(self.from_kept))


class Table(Element):
    """Answers any query with the join tests' dataset (a list of rows)."""

    ports = (query_in("rows"),)

    def on_query(self, port: str, request: Any) -> Any:
        return dataset()


def events(side: str, count: int, late_every: int) -> list[dict[str, Any]]:
    """The windowed join tests' streams, in emission order. Requests: message ``mid`` from
    ``src`` to ``dst`` at ``ts`` ≈ mid/100 s, out of order by up to 0.05 s. Responses:
    to every request but each 10th, after 0 to 0.3 s, in time order give or take 0.05 s;
    every ``late_every``-th response comes 5 s late (its time is 5 s behind)."""
    rng = random.Random(7 if side == "left" else 11)
    out = []
    for mid in range(count):
        ts = mid / 100 + rng.random() * 0.05
        if side == "left":
            out.append({"src": f"s{mid % 7}", "dst": f"d{mid % 5}", "mid": mid, "ts": ts})
        elif mid % 10:
            out.append(
                {
                    "from": f"s{mid % 7}",
                    "to": f"d{mid % 5}",
                    "mid": mid,
                    "at": ts + rng.random() * 0.3,
                }
            )
    if side == "right":
        out.sort(key=lambda r: r["at"] + rng.random() * 0.05)
        for i, r in enumerate(out):
            if late_every and i % late_every == late_every - 1:
                r["at"] -= 5.0
    return out


class Events(Source):
    """Emits :func:`events` (``side`` "left" or "right") at ``rate`` records/s."""

    ports = (push_out("out"),)
    params = (
        Param("side", "str"),
        Param("count", "int"),
        Param("late_every", "int", 0),
        Param("rate", "number", 5000.0),
    )
    resumable = True

    def on_start(self, params: dict[str, Any]) -> None:
        self.rows = events(params["side"], params["count"], params["late_every"])
        self.rate = float(params["rate"])

    def generate(self) -> Iterator[dict[str, Any] | None]:
        start = time.monotonic()
        for i, r in enumerate(self.rows):
            ahead = start + i / self.rate - time.monotonic()
            if ahead > 0.001:
                self.wait(ahead)
            yield r


class RemoveAt(Element):
    """Passes records on; when record ``at`` goes by, deletes ``target``; when record
    ``back`` goes by (if given), copies ``source`` to ``target``."""

    ports = (push_in("in"), push_out("out"))
    params = (
        Param("at", "int"),
        Param("target", "path"),
        Param("back", "int|null", None),
        Param("source", "path|null", None),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.at, self.target = params["at"], params["target"]
        self.back, self.source = params["back"], params["source"]

    def on_batch(self, port: str, records: list[Any]) -> None:
        ids = {r["id"] for r in records}
        if self.at in ids:
            os.remove(self.target)
        if self.back is not None and self.back in ids:
            tmp = f"{self.target}.tmp"
            shutil.copyfile(self.source, tmp)
            os.replace(tmp, self.target)
        self.emit_many(records)
