"""The same pipeline in Bytewax (optional extra ``[bench]``), run in one process."""

from __future__ import annotations

import time
from typing import Any


def bytewax_available() -> bool:
    try:
        import bytewax  # noqa: F401
    except ImportError:
        return False
    return True


def bytewax_version() -> str:
    from importlib.metadata import version

    return version("bytewax") if bytewax_available() else "(not installed)"


def bytewax_pipeline(total: int, batch: int = 256) -> float:
    """Records/s of source → map → filter → count in Bytewax's single-worker run_main."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import TestingSource, run_main

    from benchmarks.work import enrich, keep, records

    counted = [0]

    class _Count(StatelessSinkPartition[Any]):
        def write_batch(self, items: list[Any]) -> None:
            counted[0] += len(items)

    class _CountSink(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
            return _Count()

    flow = Dataflow("bench")
    stream = op.input("src", flow, TestingSource(records(total), batch_size=batch))
    stream = op.map("map", stream, enrich)
    stream = op.filter("filter", stream, keep)
    op.output("out", stream, _CountSink())
    started = time.perf_counter()
    run_main(flow)
    elapsed = time.perf_counter() - started
    return total / elapsed
