"""Count and Null sinks."""

from __future__ import annotations

from pathlib import Path

import orjson

from datablox.testing import ElementHarness


def test_count_logs_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "out" / "count.json"
    h = ElementHarness("Count", {"path": str(path)}, name="c")
    h.push([{"a": 1}] * 7)
    h.push([])
    h.push([{"a": 2}] * 3)
    assert h.finish() == []
    assert orjson.loads(path.read_bytes()) == {"count": 10}
    assert "c: count: 10" in h.logs


def test_count_without_path() -> None:
    h = ElementHarness("Count")
    h.push([{}])
    h.finish()
    assert h.logs == ["element: count: 1"]


def test_null_discards() -> None:
    h = ElementHarness("Null")
    assert h.push([{"a": 1}] * 5) == []
    h.finish()
    assert h.dead_letters == [] and h.logs == []
