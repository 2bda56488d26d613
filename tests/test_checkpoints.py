"""The checkpoint store and the master's checkpoint bookkeeping (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datablox.master.checkpointing import Coordinator
from datablox.runtime.checkpoints import CheckpointStore, dumps


def test_a_snapshot_reads_back_as_written(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    state = {"counts": {1: 2, "k": [1.5, None]}, "seen": {3, 4}, "pair": (1, "a")}
    rel, size = store.write_snapshot("count", 7, state)
    assert rel == "elements/count/all/7.snap" and size > 0
    assert store.read_snapshot(rel) == state
    # no temporary file is left beside it
    assert [p.name for p in (tmp_path / "checkpoints/elements/count/all").iterdir()] == ["7.snap"]


def test_a_state_that_refers_to_itself_is_kept_too() -> None:
    import pickle

    loop: list[object] = [1]
    loop.append(loop)
    back = pickle.loads(dumps(loop))
    assert back[1] is back


def test_only_a_completed_checkpoint_is_the_latest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.latest() is None
    a, _ = store.write_snapshot("a", 1, 1)
    store.complete(1, {"a": a})
    store.write_snapshot("a", 2, 2)  # written, never completed
    assert store.latest() == {"id": 1, "elements": {"a": a}}


def test_pruning_keeps_what_the_latest_needs_and_final_snapshots(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    old, _ = store.write_snapshot("a", 1, "old")
    final, _ = store.write_snapshot("b", "final-0", "end")
    store.complete(1, {"a": old, "b": final})
    new, _ = store.write_snapshot("a", 2, "new")
    store.complete(2, {"a": new, "b": final})
    later, _ = store.write_snapshot("a", 3, "in progress")
    store.prune({"a": new, "b": final})
    left = sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*.snap"))
    assert left == sorted([new, final, later])
    assert [p.name for p in (store.root / "completed").iterdir()] == ["2.json"]


def test_a_checkpoint_completes_when_every_element_acknowledged() -> None:
    co = Coordinator(frozenset({"src", "sink"}), interval=1.0)
    for element in ("src", "sink"):
        co.on_ack(element, 0, f"{element}/0", 10, now=0.0)
    assert co.restorable() and co.completed == 0
    co.start(now=0.0)
    assert co.due(now=0.5) is None
    assert co.due(now=1.0) == 1
    assert co.due(now=5.0) is None  # one at a time
    assert not co.on_ack("src", 1, "src/1", 10, now=1.1)
    assert not co.on_ack("src", 7, "src/7", 10, now=1.1)  # not the one asked for
    assert co.on_ack("sink", 1, "sink/1", 5, now=1.3)
    assert co.completed == 1 and co.files == {"src": "src/1", "sink": "sink/1"}
    assert co.stats.last_bytes == 15 and co.stats.durations == [pytest.approx(0.3)]
    assert co.due(now=2.0) is None and co.due(now=2.4) == 2


def test_a_restore_abandons_the_checkpoint_in_progress_and_ids_keep_growing() -> None:
    co = Coordinator(frozenset({"a"}), interval=1.0)
    co.on_ack("a", 0, "a/0", 1, now=0.0)
    co.start(now=0.0)
    assert co.due(now=1.0) == 1
    assert co.restore(now=1.5) == (0, {"a": "a/0"})
    assert not co.on_ack("a", 1, "a/1", 1, now=1.6)  # late news from the old epoch
    assert co.due(now=2.5) == 2
    assert co.stats.restores == 1


def test_no_interval_keeps_only_the_state_at_start() -> None:
    co = Coordinator(frozenset({"a"}), interval=0)
    co.on_ack("a", 0, "a/0", 1, now=0.0)
    co.start(now=0.0)
    assert co.due(now=100.0) is None
    assert co.restore(now=100.0) == (0, {"a": "a/0"})


def test_an_element_whose_outputs_ended_stands_for_every_later_checkpoint() -> None:
    co = Coordinator(frozenset({"src", "sink"}), interval=1.0)
    for element in ("src", "sink"):
        co.on_ack(element, 0, f"{element}/0", 1, now=0.0)
    co.start(now=0.0)
    assert not co.on_final("src", "src/final-0", now=0.5)  # nothing pending yet
    assert co.due(now=1.0) == 1
    assert co.on_ack("sink", 1, "sink/1", 1, now=1.2)
    assert co.files == {"src": "src/final-0", "sink": "sink/1"}
    # and once everything has ended, a pending checkpoint completes with the finals
    assert co.due(now=2.2) == 2
    assert co.on_final("sink", "sink/final-0", now=2.3)
    assert co.completed == 2
    assert co.restore(now=3.0) == (2, {"src": "src/final-0", "sink": "sink/final-0"})
    assert co.finals == {}
