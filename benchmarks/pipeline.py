"""datablox pipelines for the benchmark: source → map → filter → sink, split or fused."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson

from datablox.master.display import QuietDisplay
from datablox.master.embedded import run_embedded
from datablox.master.service import RunOptions, RunResult
from datablox.testing import chain as _chain

ROOT = str(Path(__file__).resolve().parent.parent)


def chain(name: str, elements: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """A linear chain whose processes can import ``benchmarks.*``."""
    return _chain(name, elements, search_path=[ROOT])


def run(tc: dict[str, Any], fusion: str, run_dir: Path, **options: Any) -> RunResult:
    result = run_embedded(
        tc,
        RunOptions(fusion=fusion, run_dir=run_dir, **options),  # type: ignore[arg-type]
        QuietDisplay(),
    )
    if result.exit_code != 0:
        raise RuntimeError(f"benchmark run {tc['name']} failed: {result.problems}")
    return result


def pipeline_chain(name: str, total: int, plain: bool = False) -> dict[str, Any]:
    """The benchmark pipeline: Generate(total) → Map → Filter → Count (``plain``: the Map
    promises plain records, so fused it hands them on without the exactness copy)."""
    return chain(
        name,
        [
            ("src", "Generate", {"count": total, "keys": 100, "seed": 1}),
            ("map", "Map", {"fn": "benchmarks.work:enrich", "plain": plain}),
            ("filter", "Filter", {"where": "v2 > 0.5"}),
            ("sink", "Count", {}),
        ],
    )


def pipeline_rate(
    total: int, fusion: str, snapshot_every: float = 1.0, plain: bool = False
) -> tuple[float, RunResult]:
    """Records/s of Generate → Map → Filter → Count with the given fusion mode.

    Checkpoints every ``snapshot_every`` seconds (the default of a run); 0: none
    after the one at start. Timed as the hand-written baselines are: from the start
    of the run to the moment its last element has finished (its final snapshot
    written), leaving out the processes' exit.
    """
    tc = pipeline_chain("bench", total, plain)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(tc, fusion, Path(tmp), snapshot_every=snapshot_every)
    return total / result.finished_after, result


def latency(rate: float, seconds: float) -> dict[str, Any]:
    """p50/p99 record latency (ms) through the separate-process pipeline at ``rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "latency.json"
        tc = chain(
            "latency",
            [
                (
                    "src",
                    "Generate",
                    {
                        "count": int(rate * seconds),
                        "rate": rate,
                        "stamp": True,
                        "keys": 100,
                        "seed": 1,
                    },
                ),
                ("map", "Map", {"fn": "benchmarks.work:enrich"}),
                ("filter", "Filter", {"where": "v2 >= 0"}),
                ("sink", "benchmarks.elements:LatencySink", {"path": str(out)}),
            ],
        )
        run(tc, "off", Path(tmp))
        figures: dict[str, Any] = orjson.loads(out.read_bytes())
    return figures


def idle_rss(seconds: float = 3.0) -> int:
    """Peak RSS (bytes) of an element process that waits for records most of the time."""
    tc = chain(
        "idle",
        [
            ("src", "Generate", {"count": int(seconds * 2), "rate": 2.0}),
            ("sink", "Null", {}),
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = run(tc, "off", Path(tmp))
    return int(result.summary()["elements"]["sink"]["peak_rss"])
