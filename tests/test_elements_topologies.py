"""The example topologies in topologies/: their classes, parameters and results.

Until the master can run them, each one is checked by a small in-process
runner: the topology's elements in ElementHarnesses, wired as the file says,
run in file order (every example is a DAG written source first). The parser
below understands only the subset of the .topo language the examples use.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from datablox.element import Source
from datablox.ports import validate_params
from datablox.registry import registered, resolve
from datablox.testing import ElementHarness

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"
ELEMENT = re.compile(r"element\s+(\w+)\s*=\s*(\w+)\((.*)\)\s*$")
QUERY = re.compile(r"(\w+)\.(\w+)\s*\?>\s*(\w+)\.(\w+)$")


@dataclass
class Topo:
    name: str
    elements: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    push: list[tuple[str, str, str, str]] = field(default_factory=list)
    query: list[tuple[str, str, str, str]] = field(default_factory=list)


def _split_args(text: str) -> dict[str, Any]:
    """``a=1, b="x", c={"k": [1, 2]}`` -> dict; values are JSON."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch == '"':
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    args = {}
    for part in filter(str.strip, parts):
        name, _, value = part.partition("=")
        args[name.strip()] = json.loads(value)
    return args


def _only_push(cls_name: str, direction: str) -> str:
    ports = [
        p.name for p in resolve(cls_name).ports if p.kind == "push" and p.direction == direction
    ]
    assert len(ports) == 1, f"{cls_name} has push {direction}-ports {ports}; name one"
    return ports[0]


def parse(path: Path) -> Topo:
    text = path.read_text()
    topo = Topo(re.search(r"topology\s+(\w+)\s*\{", text).group(1))  # type: ignore[union-attr]
    for raw in text.splitlines():
        line = raw.split("#")[0].strip() if not raw.strip().startswith("element") else raw.strip()
        if (m := ELEMENT.match(line)) is not None:
            topo.elements[m.group(1)] = (m.group(2), _split_args(m.group(3)))
        elif (m := QUERY.match(line)) is not None:
            topo.query.append((m.group(1), m.group(2), m.group(3), m.group(4)))
        elif "->" in line:
            ends = [e.strip() for e in line.split("->")]
            for left, right in itertools.pairwise(ends):
                a, _, out = left.partition(".")
                b, _, inp = right.partition(".")
                out = out or _only_push(topo.elements[a][0], "out")
                inp = inp or _only_push(topo.elements[b][0], "in")
                topo.push.append((a, out, b, inp))
    return topo


def run(topo: Topo) -> dict[str, ElementHarness]:
    """Run ``topo`` in-process in the current folder; return the harnesses."""
    fanout: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for a, out, b, inp in topo.push:
        fanout[(a, out)].append((b, inp))
    harnesses: dict[str, ElementHarness] = {}
    askers = {a for a, *_ in topo.query}
    # Answerers exist before their askers.
    for name in sorted(topo.elements, key=lambda n: n in askers):
        cls, params = topo.elements[name]
        conns = {out: len(v) for (a, out), v in fanout.items() if a == name}
        answerers = {
            port: (lambda req, h=harnesses[b], p=get: h.query(req, p))
            for a, port, b, get in topo.query
            if a == name
        }
        harnesses[name] = ElementHarness(
            cls, params, name=name, connections=conns, answerers=answerers
        )
    inbox: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for name in topo.elements:
        h = harnesses[name]
        if isinstance(h.element, Source):
            for record in h.element.generate():
                if record is not None:
                    h.ctx.emit(h.element.source_port, record)
        for port, records in inbox[name].items():
            h.handler.batch(port, records)
        for port in h.cls.ports:
            if port.kind == "push" and port.direction == "in":
                h.element.on_end(port.name)
        h.element.on_finish()
        for (a, out), targets in fanout.items():
            if a == name:
                for i, (b, inp) in enumerate(targets):
                    inbox[b][inp].extend(h.take_connection(i, out))
    return harnesses


FILES = sorted(p.name for p in TOPOLOGIES.glob("*.topo"))


@pytest.mark.parametrize("filename", FILES)
def test_classes_ports_and_params_are_valid(filename: str) -> None:
    topo = parse(TOPOLOGIES / filename)
    assert topo.elements and topo.push
    for name, (cls_name, params) in topo.elements.items():
        cls = resolve(cls_name)
        _, errors = validate_params(cls_name, cls.params, params)
        assert not errors, f"{filename}: {name}: {errors}"
    for a, out, b, inp in topo.push:
        assert resolve(topo.elements[a][0]).port(out) is not None
        assert resolve(topo.elements[b][0]).port(inp) is not None


def test_every_builtin_class_has_an_example() -> None:
    used = {cls for f in FILES for cls, _ in parse(TOPOLOGIES / f).elements.values()}
    missing = (
        {n for n, target in registered().items() if target.startswith("elements.")}
        - used
        - {"Null"}
    )
    assert not missing, f"no example topology uses {sorted(missing)}"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of topologies/ to run in, as the topology tests do."""
    shutil.copytree(TOPOLOGIES, tmp_path / "topologies")
    monkeypatch.chdir(tmp_path / "topologies")
    return tmp_path / "topologies"


def _lines(path: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in Path(path).read_bytes().splitlines()]


def test_generate_filter(workdir: Path) -> None:
    run(parse(workdir / "generate_filter.topo"))
    out = _lines("out/filtered.jsonl")
    assert 300 < len(out) < 600
    for r in out:
        assert r["value"] > 0.5 and r["key"] != "k0" and "ts" not in r
        assert r["score"] == round(r["value"] * 100) and r["bucket"] == r["id"] // 100


def test_jsonl_clean(workdir: Path) -> None:
    hs = run(parse(workdir / "jsonl_clean.topo"))
    assert [r["id"] for r in _lines("out/events_clean.jsonl")] == [2, 4, 8, 10]
    dead = hs["src"].dead_letters
    assert [(d["file"], d["line"]) for d in dead] == [("data/events.jsonl", 7)]


def test_csv_types(workdir: Path) -> None:
    run(parse(workdir / "csv_types.topo"))
    out = _lines("out/stations.jsonl")
    assert len(out) == 10
    assert out[6] == {
        "id": 7, "name": "Arecibo", "lat": 18.3442, "lon": -66.7528,
        "elevation": None, "active": False,
    }  # fmt: skip
    assert out[7]["name"] == "Palomar, Mount"
    assert all(r["active"] for i, r in enumerate(out) if i != 6)


def test_crawl(workdir: Path) -> None:
    run(parse(workdir / "crawl.topo"))
    assert [r["path"] for r in _lines("out/crawl.jsonl")] == ["events.jsonl", "profiles.jsonl"]


def test_route(workdir: Path) -> None:
    run(parse(workdir / "route.topo"))
    parts = [_lines(f"out/route/p{i}.jsonl") for i in range(3)]
    assert sum(map(len, parts)) == 1000
    keys = [{r["key"] for r in p} for p in parts]
    assert all(keys) and not (keys[0] & keys[1] or keys[1] & keys[2] or keys[0] & keys[2])


def test_route_time(workdir: Path) -> None:
    run(parse(workdir / "route_time.topo"))
    w0 = _lines("out/route_time/w0.jsonl")
    assert sorted({r["ts"] // 100 for r in w0}) == [0, 3, 6, 9]
    assert len(_lines("out/route_time/w1.jsonl")) == len(_lines("out/route_time/w2.jsonl")) == 300


def test_enrich(workdir: Path) -> None:
    run(parse(workdir / "enrich.topo"))
    out = _lines("out/enriched.jsonl")
    assert len(out) == 200
    for r in out:
        if r["key"] in ("k6", "k8", "k9"):
            assert r["profile"] is None
        else:
            assert r["profile"]["key"] == r["key"]


def test_count(workdir: Path) -> None:
    run(parse(workdir / "count.topo"))
    assert orjson.loads(Path("out/count.json").read_bytes()) == {"count": 100000}
