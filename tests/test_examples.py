"""Every example in topologies/ runs with `datablox-master run` and gives the expected output.

Each example runs in a temporary copy of topologies/ (its parameters use
relative paths), once with every element in its own process (``--fusion off``)
and once with every chain fused (``--fusion max``). Expected outputs are
computed here from the input files and the documented behaviour of the
element classes, not read back from the framework.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datablox import dsl
from datablox.partition import partition_of
from datablox.registry import registered
from tests.conftest import TRACEBACK, assert_no_element_processes, console_script

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"
EXAMPLES = sorted(p.stem for p in TOPOLOGIES.glob("*.topo"))
RUN_TIMEOUT = 60


@dataclass
class Ran:
    """One finished example run: its folder (the copy), run folder, exit code and summary."""

    folder: Path
    run_dir: Path
    code: int
    stderr: str
    summary: dict[str, Any]
    tradecraft: dict[str, Any]

    def lines(self, relative: str) -> list[dict[str, Any]]:
        text = (self.folder / relative).read_text()
        assert text.endswith("\n"), f"{relative} does not end with a complete line"
        return [json.loads(line) for line in text.splitlines()]

    def element(self, name: str) -> dict[str, Any]:
        figures: dict[str, Any] = self.summary["elements"][name]
        return figures


def run_example(tmp_path: Path, name: str, fusion: str) -> Ran:
    folder = tmp_path / "topologies"
    shutil.copytree(TOPOLOGIES, folder)
    run_dir = (tmp_path / "run").resolve()
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [
            console_script("datablox-master"),
            "run",
            f"{name}.topo",
            "--fusion",
            fusion,
            "--display",
            "plain",
            "--run-dir",
            str(run_dir),
            "--summary-json",
            str(summary),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert summary.exists(), f"no summary written (exit {proc.returncode}):\n{proc.stderr}"
    assert_no_element_processes(run_dir)
    return Ran(
        folder,
        run_dir,
        proc.returncode,
        proc.stderr,
        json.loads(summary.read_text()),
        dsl.compile_file(str(folder / f"{name}.topo")).tradecraft,
    )


def generated(count: int, keys: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    """The records Generate(count, keys, seed) emits, as its docstring defines them."""
    rng = random.Random(seed)
    return [
        {"id": i, "key": f"k{i % keys}", "value": round(rng.random(), 6), "ts": i}
        for i in range(count)
    ]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def chain_edge_count(tc: dict[str, Any]) -> int:
    """Push connections from an element with one push output to one with one push input,
    neither of them sharded (a shard is never fused)."""
    push = [c for c in tc["connections"] if c["kind"] == "push"]
    outs = [c["from"]["element"] for c in push]
    ins = [c["to"]["element"] for c in push]
    sharded = {e["name"] for e in tc["elements"] if e.get("shard")}
    return sum(
        1
        for c in push
        if outs.count(c["from"]["element"]) == 1
        and ins.count(c["to"]["element"]) == 1
        and not {c["from"]["element"], c["to"]["element"]} & sharded
    )


EXPECTED: dict[str, Callable[[Ran], None]] = {}


def expects(name: str) -> Callable[[Callable[[Ran], None]], Callable[[Ran], None]]:
    def register(check: Callable[[Ran], None]) -> Callable[[Ran], None]:
        EXPECTED[name] = check
        return check

    return register


@expects("count")
def _count(ran: Ran) -> None:
    assert json.loads((ran.folder / "out/count.json").read_text()) == {"count": 100000}
    assert ran.element("src")["out"] == 100000
    assert ran.element("total")["in"] == 100000


@expects("crawl")
def _crawl(ran: Ran) -> None:
    data = ran.folder / "data"
    expected = []
    for path in sorted(data.rglob("*")):
        rel = path.relative_to(data)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        st = path.stat()
        if path.suffix == ".jsonl" and st.st_size > 0:
            expected.append(
                {
                    "path": rel.as_posix(),
                    "name": path.name,
                    "suffix": ".jsonl",
                    "size": st.st_size,
                    "mtime": st.st_mtime,
                }
            )
    assert len(expected) >= 2
    assert ran.lines("out/crawl.jsonl") == expected


def _convert(kind: str, text: str) -> Any:
    if not text.strip():
        return None
    if kind == "bool":
        assert text.lower() in {"true", "yes", "1", "false", "no", "0"}, text
        return text.lower() in {"true", "yes", "1"}
    return {"int": int, "float": float}[kind](text)


@expects("csv_types")
def _csv_types(ran: Ran) -> None:
    types = {"id": "int", "lat": "float", "lon": "float", "elevation": "float", "active": "bool"}
    with open(ran.folder / "data/stations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = [
        {k: _convert(types[k], v) if k in types else v for k, v in row.items()} for row in rows
    ]
    out = ran.lines("out/stations.jsonl")
    assert out == expected
    assert out[6] == {
        "id": 7,
        "name": "Arecibo",
        "lat": 18.3442,
        "lon": -66.7528,
        "elevation": None,
        "active": False,
    }
    assert out[7]["name"] == "Palomar, Mount"


@expects("enrich")
def _enrich(ran: Ran) -> None:
    profiles = {r["key"]: r for r in read_jsonl(ran.folder / "data/profiles.jsonl")}
    expected = [{**r, "profile": profiles.get(r["key"])} for r in generated(200, 10, seed=3)]
    out = ran.lines("out/enriched.jsonl")
    assert out == expected
    assert {r["key"] for r in out if r["profile"] is None} == {"k6", "k8", "k9"}
    assert ran.element("lookup")["dead"] == 0


@expects("generate_filter")
def _generate_filter(ran: Ran) -> None:
    expected = [
        {
            "id": r["id"],
            "key": r["key"],
            "value": r["value"],
            "score": round(r["value"] * 100),
            "bucket": r["id"] // 100,
        }
        for r in generated(1000, seed=7)
        if r["value"] > 0.5 and r["key"] != "k0"
    ]
    out = ran.lines("out/filtered.jsonl")
    assert out == expected
    assert all(type(r["score"]) is int for r in out)


@expects("jsonl_clean")
def _jsonl_clean(ran: Ran) -> None:
    raw_lines = (ran.folder / "data/events.jsonl").read_text().splitlines()
    good, malformed = [], []
    for lineno, line in enumerate(raw_lines, 1):
        if not line.strip():
            continue
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            malformed.append((lineno, line))
    assert malformed == [(7, raw_lines[6])]
    expected = [r for r in good if r["level"] in ("warning", "error")]
    assert [r["id"] for r in expected] == [2, 4, 8, 10]
    assert ran.lines("out/events_clean.jsonl") == expected

    dead = [
        json.loads(line)
        for line in (ran.run_dir / "deadletter" / "src.jsonl").read_text().splitlines()
    ]
    assert len(dead) == 1
    assert dead[0]["error"].startswith("malformed JSON at column ")
    assert dead[0] == {
        "element": "src",
        "file": str(ran.folder / "data/events.jsonl"),
        "line": 7,
        "record": raw_lines[6],
        "error": dead[0]["error"],
    }
    assert ran.element("src")["dead"] == 1
    assert ran.element("src")["out"] == len(good)
    assert ran.element("alerts")["dead"] == ran.element("out")["dead"] == 0
    assert str(ran.run_dir / "deadletter" / "src.jsonl") in ran.stderr


def _partition_owner(key: str, owners: int) -> int:
    return (zlib.crc32(key.encode()) % 256) * owners // 256


@expects("route")
def _route(ran: Ran) -> None:
    records = generated(1000, keys=12, seed=1)
    for i in range(3):
        expected = [r for r in records if _partition_owner(r["key"], 3) == i]
        assert ran.lines(f"out/route/p{i}.jsonl") == expected, f"p{i}"
        assert ran.element(f"p{i}")["in"] == len(expected)


@expects("route_time")
def _route_time(ran: Ran) -> None:
    records = generated(1000, seed=2)
    for i in range(3):
        expected = [r for r in records if r["ts"] // 100 % 3 == i]
        assert ran.lines(f"out/route_time/w{i}.jsonl") == expected, f"w{i}"
    assert {r["ts"] // 100 for r in ran.lines("out/route_time/w0.jsonl")} == {0, 3, 6, 9}


@expects("tour")
def _tour(ran: Ran) -> None:
    profiles = {r["key"]: r for r in read_jsonl(ran.folder / "data/profiles.jsonl")}
    records = [
        {**r, "score": round(r["value"] * 100), "profile": profiles.get(r["key"])}
        for r in generated(2000, keys=10, seed=11)
        if r["value"] > 0.5
    ]
    for i, sink in enumerate("ab"):
        expected = [r for r in records if _partition_owner(r["key"], 2) == i]
        assert expected, sink
        # lookup is a pool: its members may interleave their records
        got = ran.lines(f"out/tour/{sink}.jsonl")
        assert sorted(got, key=lambda r: r["id"]) == expected, sink
    assert ran.element("shape/keep")["out"] == len(records)
    members = ran.summary["shards"]["lookup"]["members"]
    assert members[0] == "lookup#1"
    assert sum(
        v["in"] for n, v in ran.summary["elements"].items() if n.startswith("lookup#")
    ) == len(records)
    # the group's inner elements exist under the instance's name
    assert {"shape/keep", "shape/score"} <= set(ran.summary["elements"])
    assert "feed 'enriched' (lookup.out)" in ran.stderr
    assert "shard lookup (pool)" in ran.stderr


@expects("shard_pool")
def _shard_pool(ran: Ran) -> None:
    rows = ran.lines("out/pool.jsonl")
    want = [{**r, "double": r["id"] * 2} for r in generated(50000)]
    assert sorted(rows, key=lambda r: r["id"]) == want
    shard = ran.summary["shards"]["double"]
    assert shard["kind"] == "pool" and len(shard["members"]) >= 2
    ins = [ran.element(m)["in"] for m in shard["members"]]
    assert all(n > 0 for n in ins)


@expects("shard_keyed")
def _shard_keyed(ran: Ran) -> None:
    rows = ran.lines("out/key_counts.jsonl")
    assert {r["key"]: r["count"] for r in rows} == {f"k{i}": 100 for i in range(1000)}
    assert len(rows) == 1000
    shard = ran.summary["shards"]["counts"]
    assert shard["kind"] == "keyed" and shard["key"] == ["key"]
    assert sum(shard["partitions"].values()) == 256


@expects("join_gps")
def _join_gps(ran: Ran) -> None:
    rows = ran.lines("out/gps_places.jsonl")
    data = TOPOLOGIES / "data"
    with open(data / "countries.csv", newline="") as fh:
        countries = {r["code"]: r for r in csv.DictReader(fh)}
    owners = {r["id"]: r for r in read_jsonl(data / "devices.jsonl")}
    want = [
        {
            **e,
            "place": countries.get(e["country"]),
            "dataset_version": 1,
            "owner": owners.get(e["device"]),
            "owners_version": 1,
        }
        for e in read_jsonl(data / "gps.jsonl")
    ]
    assert sorted(rows, key=lambda r: r["seq"]) == want
    assert any(r["place"] is None for r in rows) and any(r["owner"] is None for r in rows)
    assert sum(ran.summary["shards"]["geo/join"]["partitions"].values()) == 256


@expects("join_window")
def _join_window(ran: Ran) -> None:
    """The windowed join in plain Python: per side, in file order, a record more than
    0.2 s behind the latest time seen in its partition on its side is late; the others
    pair when (src, dst, msg_id) are equal and times differ by at most 0.2 s."""
    data = TOPOLOGIES / "data"
    kept, late = [], []
    for name in ("requests", "responses"):
        seen: dict[int, float] = {}
        ok = []
        for r in read_jsonl(data / f"{name}.jsonl"):
            p = partition_of((r["src"], r["dst"], r["msg_id"]))
            if p in seen and r["ts"] < seen[p] - 0.2:
                late.append({**r, "side": "left" if name == "requests" else "right"})
                continue
            seen[p] = max(seen.get(p, r["ts"]), r["ts"])
            ok.append(r)
        kept.append(ok)
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in kept[1]:
        by_key.setdefault((r["src"], r["dst"], r["msg_id"]), []).append(r)
    want = [
        {**q, "response": r}
        for q in kept[0]
        for r in by_key.get((q["src"], q["dst"], q["msg_id"]), [])
        if abs(r["ts"] - q["ts"]) <= 0.2
    ]

    def order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))

    assert order(ran.lines("out/request_response.jsonl")) == order(want)
    assert order(ran.lines("out/late.jsonl")) == order(late) and late


@pytest.mark.parametrize("fusion", ["off", "max"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_gives_the_expected_output(tmp_path: Path, name: str, fusion: str) -> None:
    assert name in EXPECTED, (
        f"topologies/{name}.topo has no expected-output check; add one to {__file__}"
    )
    ran = run_example(tmp_path, name, fusion)
    assert ran.code == 0, ran.stderr
    assert ran.summary["exit_code"] == 0
    assert ran.summary["problems"] == [], ran.summary["problems"]
    assert ran.summary["lost"] == [], ran.summary["lost"]
    assert not TRACEBACK.search(ran.stderr), ran.stderr
    # a shard runs as members, each in a process of its own (members may come and go)
    members = sum(len(s["members"]) for s in ran.summary["shards"].values())
    elements = len(ran.tradecraft["elements"]) - len(ran.summary["shards"]) + members
    processes = len([p for p in ran.summary["processes"].values() if p["exit"] != "retired"])
    if fusion == "off":
        assert processes == elements
    else:
        assert processes == elements - chain_edge_count(ran.tradecraft)
    EXPECTED[name](ran)


def test_every_expected_output_check_has_an_example() -> None:
    assert sorted(EXPECTED) == EXAMPLES


def test_every_builtin_class_has_an_example() -> None:
    used = {
        e["class"]
        for name in EXAMPLES
        for e in dsl.compile_file(str(TOPOLOGIES / f"{name}.topo")).tradecraft["elements"]
    }
    builtin = {n for n, target in registered().items() if target.startswith("elements.")}
    # Null only discards; an example of it would show nothing.
    missing = builtin - used - {"Null"}
    assert not missing, f"no example topology uses {sorted(missing)}"


def test_examples_shown_in_the_docs_are_the_files_that_run_here() -> None:
    """A docs block marked ``file=PATH`` is that file of the repository, word for word,
    so the example a reader copies is one these tests run."""
    root = Path(__file__).resolve().parent.parent
    shown = []
    for doc in sorted((root / "docs").glob("*.md")):
        for path, body in re.findall(r"```\w+ file=(\S+)\n(.*?)```", doc.read_text(), re.S):
            shown.append(path)
            assert (root / path).read_text() == body, f"{doc.name}: {path} differs from the file"
    assert "topologies/tour.topo" in shown
