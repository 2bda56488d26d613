"""The benchmark's latency probe: its percentiles are those of every record."""

from __future__ import annotations

import random

from benchmarks.elements import latency_figures


def test_percentiles_of_weighted_latencies_are_those_of_every_record() -> None:
    rng = random.Random(5)
    pairs = [(round(rng.random(), 3), rng.randint(1, 40)) for _ in range(2_000)]
    every = sorted(latency for latency, count in pairs for _ in range(count))
    n = len(every)
    got = latency_figures(pairs, missing=3)
    assert got["count"] == n and got["missing"] == 3
    assert got["p50_ms"] == every[int(0.50 * n)] * 1000
    assert got["p99_ms"] == every[int(0.99 * n)] * 1000
    assert got["max_ms"] == every[-1] * 1000


def test_no_records_gives_zeros() -> None:
    assert latency_figures([], missing=0) == {
        "count": 0,
        "missing": 0,
        "p50_ms": 0.0,
        "p99_ms": 0.0,
        "max_ms": 0.0,
    }
