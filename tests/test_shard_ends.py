"""Shard changes that overlap the end of the stream: every record counted once, and the run
ends as soon as its processes do.

A process reads no control messages once its elements have all finished, and
the master learns of its exit a little later. The tests make that window
seconds long: a sink slow to finish, or a care-taker that reports clean exits
a few seconds late.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datablox.caretaker.supervisor import Exit, Supervisor
from datablox.runtime.wiring import SEND_LINGER_MS
from tests.conftest import Cluster
from tests.test_shards import compiled, expected_counts, read

#: seconds the care-taker keeps a clean exit to itself
HOLD_EXITS = 4.0


@pytest.fixture
def late_exits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The (in-process) care-taker reports each clean exit HOLD_EXITS seconds late."""
    reap = Supervisor.reap
    held: list[tuple[float, Exit]] = []

    def late_reap(self: Supervisor) -> list[Exit]:
        now = time.monotonic()
        out = []
        for ex in reap(self):
            if ex.kind == "finished":
                held.append((now + HOLD_EXITS, ex))
            else:
                out.append(ex)
        for item in list(held):
            if now >= item[0]:
                held.remove(item)
                out.append(item[1])
        return out

    monkeypatch.setattr(Supervisor, "reap", late_reap)
    yield


def counting(
    tmp_path: Path,
    count: int,
    cls: str = "KeyCount",
    extra: str = "",
    sink: str = "JsonLinesSink",
    sink_extra: str = "",
) -> dict[str, Any]:
    return compiled(
        tmp_path,
        f"""
        topology ending {{
            element src = Generate(count={count}, rate=6000, keys=500)
            element counts = {cls}(key="key"{extra}) shard(min=1, max=4, key="key")
            element out = {sink}(path="{tmp_path / "counts.jsonl"}"{sink_extra})
            src.out -> counts.in
            counts.out -> out.in
        }}
        """,
    )


def run_change(
    cluster: Cluster, tmp_path: Path, tradecraft: dict[str, Any], count: int, change: str
) -> dict[str, Any]:
    """Run with one forced change; the counts must be exact and the run must not have
    waited out a linger. The summary's elements, for the test to look at."""
    result = cluster.run(
        tradecraft, autoscale=False, fusion="off", snapshot_every=0, reshard=[change]
    )
    assert result.exit_code == 0, result.problems
    rows = read(tmp_path / "counts.jsonl")
    got = {r["key"]: r["count"] for r in rows}
    assert len(rows) == len(got)
    assert got == expected_counts(count, 500)
    assert result.elapsed < SEND_LINGER_MS / 1000 / 2, "a new member waited out its linger"
    elements: dict[str, Any] = result.summary()["elements"]
    return elements


@pytest.mark.timeout(90)
def test_members_added_after_their_receiver_finished_do_not_wait_to_deliver(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The change is decided once every record is in. The sink is in its slow (3 s)
    ``on_finish`` when the new members are wired, so it never reads that it should wait
    for their ends, and it has exited when they run (they take 4 s to start): what they
    would send it is dropped (nothing: no record comes) instead of waiting
    SEND_LINGER_MS at their exit for a receiver that is gone."""
    tradecraft = counting(
        tmp_path,
        6000,
        "shard_elements:SlowStartCount",
        ", delay=4.0",
        sink="shard_elements:SlowFinishSink",
        sink_extra=", delay=3.0",
    )
    elements = run_change(cluster, tmp_path, tradecraft, 6000, "counts:members=3@6000")
    assert "counts#3" in elements  # the change did start
    assert elements["counts#1"]["in"] == 6000


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("late_exits")
def test_members_whose_senders_finished_while_they_started_end_too(
    cluster: Cluster, tmp_path: Path
) -> None:
    """New members are wired while the stream flows (it lasts 3 s; they are decided at
    about 1 s) and take 3 s to start: the stream ends meanwhile. The senders have
    finished when the master connects them: the members end those connections
    themselves instead of waiting for an end-of-stream no sender will send."""
    tradecraft = counting(tmp_path, 18000, "shard_elements:SlowStartCount", ", delay=3.0")
    elements = run_change(cluster, tmp_path, tradecraft, 18000, "counts:members=3@2000")
    assert {"counts#2", "counts#3"} <= elements.keys()
