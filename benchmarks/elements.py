"""Element classes used only by the benchmark."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from datablox import Element, Param, push_in


class LatencySink(Element):
    """Records ``now - t_emit`` of every record and writes p50/p99/max (ms) to ``path``.

    Ports: push in ``in`` (records need a ``t_emit`` field from Generate(stamp=true)).
    Parameters: ``path`` (str) where the JSON result is written at the end.
    Bad input: a record without ``t_emit`` is counted in ``missing``.
    """

    ports = (push_in("in"),)
    params = (Param("path", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.latencies: list[float] = []
        self.missing = 0

    def on_batch(self, port: str, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for r in records:
            t = r.get("t_emit")
            if t is None:
                self.missing += 1
            else:
                self.latencies.append(now - t)

    def on_finish(self) -> None:
        lat = sorted(self.latencies)
        n = len(lat)

        def pct(p: float) -> float:
            return lat[min(n - 1, int(p * n))] * 1000 if n else 0.0

        self.path.write_bytes(
            orjson.dumps(
                {
                    "count": n,
                    "missing": self.missing,
                    "p50_ms": pct(0.50),
                    "p99_ms": pct(0.99),
                    "max_ms": lat[-1] * 1000 if n else 0.0,
                }
            )
        )


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
