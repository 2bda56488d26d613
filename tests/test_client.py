"""``datablox.run``: a topology run from Python, in real element processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

import datablox
from datablox.testing import chain

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"


def test_run_a_topo_file_with_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(TOPOLOGIES, tmp_path / "topologies")
    monkeypatch.chdir(tmp_path / "topologies")  # the example's paths are relative
    result = datablox.run(
        "generate_filter.topo", overrides=["src.count=300"], run_dir=tmp_path / "run"
    )
    assert result.exit_code == 0, result.problems
    rows = [orjson.loads(x) for x in Path("out/filtered.jsonl").read_bytes().splitlines()]
    assert result.summary()["elements"]["src"]["out"] == 300
    assert len(rows) == result.summary()["elements"]["out"]["in"] > 0


def test_run_a_tradecraft_dict(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "py", [("src", "Generate", {"count": 50}), ("out", "JsonLinesSink", {"path": str(out)})]
    )
    result = datablox.run(tc, fusion="off", run_dir=tmp_path / "run")
    assert result.exit_code == 0
    assert len(out.read_bytes().splitlines()) == 50


def test_a_topology_error_raises_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.topo"
    bad.write_text("topology bad {\n    element src = Generate(cnt=5)\n}\n")
    with pytest.raises(datablox.TopologyError) as err:
        datablox.run(bad)
    assert "Generate has no parameter 'cnt'" in str(err.value)
    assert "bad.topo:2:" in str(err.value)
