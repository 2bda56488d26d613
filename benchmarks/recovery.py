"""Benchmarks of the delivery guarantee: recovery time after kill -9, snapshot cost."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.pipeline import chain, run
from datablox.runtime.checkpoints import CheckpointStore


def _process_of(run_dir: Path, name: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "datablox.runtime.process" in cmdline and f"{run_dir}/specs/{name}.json" in cmdline:
            return proc
    return None


def recovery(kills: int = 3, rate: float = 50_000.0) -> dict[str, Any]:
    """Seconds from ``kill -9`` of the middle process to records reaching the sink again.

    Generate (paced) → Filter → ArrivalSink, split; the Filter's process is
    killed ``kills`` times, 1.5 s apart, once the first checkpoint has
    completed. Every sink process notes when its first batch arrived; the
    figure is that moment (of the sink started by the restore) minus the kill.
    """
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        marks = Path(tmp) / "arrivals"
        marks.mkdir()
        seconds = 2.0 + kills * 1.5
        tc = chain(
            "recovery",
            [
                ("src", "Generate", {"count": int(rate * seconds), "rate": rate, "seed": 1}),
                ("filter", "Filter", {"where": "value >= 0"}),
                ("sink", "benchmarks.elements:ArrivalSink", {"folder": str(marks)}),
            ],
        )
        killed_at: list[float] = []

        def killer() -> None:
            latest = run_dir / "checkpoints" / "LATEST"
            while not latest.exists():
                time.sleep(0.01)  # a benchmark's poll interval
            for _ in range(kills):
                time.sleep(1.5)  # a benchmark's schedule: let the restored run settle
                proc = _process_of(run_dir, "p1-filter")
                if proc is None:
                    return
                killed_at.append(time.time())
                os.kill(proc.pid, signal.SIGKILL)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        result = run(tc, "off", run_dir, max_restarts=kills + 1)
        thread.join()
        arrivals = sorted(float(p.read_text()) for p in marks.iterdir())
    flowing = []
    for at in killed_at:
        after = [a for a in arrivals if a > at]
        if after:
            flowing.append(after[0] - at)
    return {
        "flowing": flowing,
        "restore": result.checkpoints["recovery_seconds"],
        "kills": len(killed_at),
    }


def snapshot_of_keys(keys: int = 1_000_000) -> dict[str, float]:
    """Time and size of one KeyValueStore snapshot holding ``keys`` records.

    The path a checkpoint takes: ``snapshot()`` plus the runtime's part,
    pickled, written to a temporary file, fsynced and renamed.
    """
    from datablox.elements.kvstore import KeyValueStore

    store = KeyValueStore()
    store.on_start({"key": "key", "path": None})
    store.data = {f"k{i}": {"key": f"k{i}", "value": i * 0.5, "n": i} for i in range(keys)}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        _, size = CheckpointStore(tmp).write_snapshot("store", 1, {"state": store.snapshot()})
        took = time.perf_counter() - started
        started = time.perf_counter()
        CheckpointStore(tmp).read_snapshot("elements/store/all/1.snap")
        back = time.perf_counter() - started
    return {"seconds": took, "bytes": float(size), "restore_seconds": back}
