"""Good .topo files compile to the exact tradecraft JSON."""

# ruff: noqa: E501  (expected compiler output is compared verbatim, long lines included)

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from datablox import dsl
from datablox.dsl import compile_file, compile_source, load_any, load_tradecraft

CASES = Path(__file__).parent / "dslcases"
FOLDER = str(CASES.resolve())


@pytest.fixture(autouse=True)
def _in_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)


def compiled(text: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    return compile_source(textwrap.dedent(text), "t.topo", overrides).tradecraft


def el(i: int, name: str, cls: str, params: dict[str, Any] | None = None, **kw: Any) -> dict:
    return {
        "id": i,
        "name": name,
        "class": cls,
        "params": params or {},
        "node": kw.get("node"),
        "shard": kw.get("shard"),
    }


def conn(i: int, kind: str, src: str, dst: str) -> dict:
    (a, p), (b, q) = src.rsplit(".", 1), dst.rsplit(".", 1)
    return {
        "id": i,
        "kind": kind,
        "from": {"element": a, "port": p},
        "to": {"element": b, "port": q},
    }


ALERTS = {
    "tradecraft": 1,
    "name": "alerts",
    "search_path": [FOLDER],
    "elements": [
        el(
            0,
            "src",
            "cases:Gen",
            {
                "count": 100,
                "rate": None,
                "flag": True,
                "ratio": -1500.0,
                "tags": ["a", "b"],
                "opts": {"k": 1, "n": {"x": False}},
            },
        ),
        el(
            1,
            "xm",
            "cases:Thing",
            {"x": 2.0},
            shard={"min": 1, "max": 8, "key": ["x", "name.first"]},
        ),
        el(2, "db", "cases:Sink", {"path": "out.jsonl"}, node="node2"),
        el(3, "g/f", "cases:Filt", {"where": "value", "limit": 3}),
        el(4, "g/m", "cases:Thing", {"x": [1, 2, {"a": None}]}),
        el(5, "p", "cases:Probe", {"every": 100}),
        el(6, "s", "cases:Src"),
    ],
    "connections": [
        conn(0, "push", "g/f.out", "g/m.in"),
        conn(1, "push", "src.out", "g/f.in"),
        conn(2, "push", "g/m.out", "xm.in"),
        conn(3, "push", "xm.out", "db.in"),
        conn(4, "push", "s.out", "db.in"),
        conn(5, "query", "p.ask", "db.lookup"),
    ],
    "feeds": [{"name": "matches", "element": "xm", "port": "out"}],
    "fuse": [["src", "g/f", "g/m"]],
}


def test_every_feature_compiles_to_the_exact_tradecraft() -> None:
    result = compile_file("alerts.topo")
    assert result.tradecraft == ALERTS
    assert result.warnings == []
    assert result.rendered_warnings() == ""


def test_output_is_plain_json_in_documented_key_order() -> None:
    tc = compile_file("alerts.topo").tradecraft
    assert json.loads(json.dumps(tc)) == tc
    assert list(tc) == [
        "tradecraft",
        "name",
        "search_path",
        "elements",
        "connections",
        "feeds",
        "fuse",
    ]
    assert list(tc["elements"][0]) == ["id", "name", "class", "params", "node", "shard"]
    assert list(tc["connections"][0]) == ["id", "kind", "from", "to"]


def test_search_path_is_the_files_absolute_folder(tmp_path: Path) -> None:
    path = tmp_path / "x.topo"
    path.write_text("topology x { element a = cases:Src() feed f = a.out }")
    (tmp_path / "cases.py").write_text((CASES / "cases.py").read_text())
    assert compile_file(str(path)).tradecraft["search_path"] == [str(tmp_path)]


def test_compile_source_without_a_file_name_uses_the_working_folder() -> None:
    result = compile_source("topology x { element a = cases:Src() feed f = a.out }")
    assert result.tradecraft["search_path"] == [FOLDER]


def test_chain_with_bare_names_resolves_only_ports() -> None:
    tc = compiled(
        """
        topology chain {
            element s = cases:Src()
            element a = cases:Thing()
            element b = cases:Filt(where="x > 1")
            element d = cases:Sink()
            s -> a -> b.in
            b -> d
        }
        """
    )
    assert tc["connections"] == [
        conn(0, "push", "s.out", "a.in"),
        conn(1, "push", "a.out", "b.in"),
        conn(2, "push", "b.out", "d.in"),
    ]


def test_query_chain_with_bare_names() -> None:
    tc = compiled(
        """
        topology q {
            element p = cases:Probe()
            element d = cases:Sink()
            element s = cases:Src()
            s -> d
            p ?> d
        }
        """
    )
    assert tc["connections"][1] == conn(1, "query", "p.ask", "d.lookup")


def test_separators_comments_and_placement_order() -> None:
    tc = compiled(
        """
        # leading comment

        topology sep {   # trailing comment
            element a = cases:Thing() on "host-1.example" shard(min=2, max=3);  element b = cases:Thing() shard(max=4) on n1
            element c = cases:Sink()
              ;;
            a.out -> b.in; b.out
              -> c.in
        }
        """
    )
    assert tc["elements"] == [
        el(0, "a", "cases:Thing", node="host-1.example", shard={"min": 2, "max": 3}),
        el(1, "b", "cases:Thing", node="n1", shard={"min": 1, "max": 4}),
        el(2, "c", "cases:Sink"),
    ]
    assert len(tc["connections"]) == 2


def test_values_strings_escapes_and_numbers() -> None:
    tc = compiled(
        r"""
        topology v {
            element a = cases:Thing(x=["q\"uote", 'it\'s', "tab\there", "\u00e9", 0, -7, 1e3, .5, 2.5E-1, {}, [], {"k": [true, false, null],}])
        }
        """
    )
    assert tc["elements"][0]["params"]["x"] == [
        'q"uote',
        "it's",
        "tab\there",
        "é",
        0,
        -7,
        1000.0,
        0.5,
        0.25,
        {},
        [],
        {"k": [True, False, None]},
    ]


def test_group_params_defaults_and_exposes() -> None:
    tc = compiled(
        """
        group Stage(where, limit=7) {
            element f = cases:Filt(where=where, limit=limit)
            expose in = f.in
            expose out = f.out
        }
        topology g {
            element s = cases:Src()
            element one = Stage(where="a") on n1
            element two = Stage(where="b", limit=2)
            s -> one -> two.in
            feed done = two.out
            fuse one, two
        }
        """
    )
    assert tc["elements"] == [
        el(0, "s", "cases:Src"),
        el(1, "one/f", "cases:Filt", {"where": "a", "limit": 7}, node="n1"),
        el(2, "two/f", "cases:Filt", {"where": "b", "limit": 2}),
    ]
    assert tc["connections"] == [
        conn(0, "push", "s.out", "one/f.in"),
        conn(1, "push", "one/f.out", "two/f.in"),
    ]
    assert tc["feeds"] == [{"name": "done", "element": "two/f", "port": "out"}]
    assert tc["fuse"] == [["one/f", "two/f"]]


def test_groups_imported_from_other_folders_nest() -> None:
    tc = compile_file("uses_nested.topo").tradecraft
    assert [e["name"] for e in tc["elements"]] == ["s", "p/a/f", "p/a/m", "p/b", "d"]
    assert tc["elements"][1]["params"] == {"where": "value", "limit": 5}
    assert {e["node"] for e in tc["elements"][1:4]} == {"n3"}
    assert tc["connections"] == [
        conn(0, "push", "p/a/f.out", "p/a/m.in"),
        conn(1, "push", "p/a/m.out", "p/b.in"),
        conn(2, "push", "s.out", "p/a/f.in"),
        conn(3, "push", "p/b.out", "d.in"),
    ]


def test_unconnected_ports_are_warnings() -> None:
    result = compile_source(
        "topology w {\n    element s = cases:Src()\n    element t = cases:Thing()\n}\n", "w.topo"
    )
    assert result.rendered_warnings() == textwrap.dedent(
        """\
        warning: push out-port 's.out' is not connected: its records are discarded
         --> w.topo:2:13
          |
        2 |     element s = cases:Src()
          |             ^
          = hint: connect it, or publish it: feed NAME = s.out

        warning: push in-port 't.in' has no incoming connection
         --> w.topo:3:13
          |
        3 |     element t = cases:Thing()
          |             ^
          = hint: connect an out-port to it, or remove the element

        warning: push out-port 't.out' is not connected: its records are discarded
         --> w.topo:3:13
          |
        3 |     element t = cases:Thing()
          |             ^
          = hint: connect it, or publish it: feed NAME = t.out"""
    )
    assert [w.severity for w in result.warnings] == ["warning"] * 3


def test_overrides_set_parameters_with_literal_values() -> None:
    tc = compile_file(
        "alerts.topo",
        [
            "src.count=5",
            "src.tags=['x', \"y\"]",
            "src.rate=2.5",
            "db.path=other.jsonl",
            "g/f.where=a.b = c",
            'xm.x={"k": null}',
            "p.every = 7",
        ],
    ).tradecraft
    params = {e["name"]: e["params"] for e in tc["elements"]}
    assert params["src"]["count"] == 5
    assert params["src"]["tags"] == ["x", "y"]
    assert params["src"]["rate"] == 2.5
    assert params["db"]["path"] == "other.jsonl"
    assert params["g/f"]["where"] == "a.b = c"
    assert params["xm"]["x"] == {"k": None}
    assert params["p"]["every"] == 7


def test_tradecraft_json_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(ALERTS))
    assert load_any(str(path)).tradecraft == ALERTS
    assert load_tradecraft(ALERTS).tradecraft == ALERTS
    assert load_tradecraft(str(path), ["p.every=3"]).tradecraft["elements"][5]["params"] == {
        "every": 3
    }


def test_minimal_tradecraft_fills_in_optional_keys() -> None:
    data = {
        "tradecraft": 1,
        "name": "m",
        "search_path": [FOLDER],
        "elements": [{"name": "s", "class": "cases:Src"}],
        "feeds": [{"name": "f", "element": "s", "port": "out"}],
    }
    assert load_tradecraft(data).tradecraft == {
        **data,
        "elements": [el(0, "s", "cases:Src")],
        "connections": [],
        "fuse": [],
    }


def test_load_any_dispatches_on_extension() -> None:
    assert load_any("alerts.topo").tradecraft == ALERTS


def test_public_api() -> None:
    assert set(dsl.__all__) >= {
        "CompileResult",
        "Diagnostic",
        "compile_file",
        "compile_source",
        "load_any",
        "load_tradecraft",
    }


def test_placement_may_continue_on_the_next_line() -> None:
    tc = compiled(
        """
        topology t {
            element xm = cases:Thing(x=2.0)
                         shard(min=1, max=8)   # may scale out
                         on n1
            feed f = xm
        }
        """
    )
    assert tc["elements"] == [
        el(0, "xm", "cases:Thing", {"x": 2.0}, node="n1", shard={"min": 1, "max": 8})
    ]
    assert tc["feeds"] == [{"name": "f", "element": "xm", "port": "out"}]


def test_checker_is_a_function_of_the_ir() -> None:
    from datablox.dsl.checker import check
    from datablox.dsl.ir import Connection, Element, Endpoint, Spans, Topology

    topo = Topology(
        "t",
        elements=[Element("s", "cases:Src"), Element("d", "cases:Sink")],
        connections=[Connection("push", Endpoint("s", None), Endpoint("d", None))],
    )
    checked, diags = check(topo, Spans())
    assert diags == []
    assert str(checked.connections[0].src) == "s.out"
    assert topo.connections[0].src.port is None  # the input is left alone


def test_a_checker_resolving_in_process_imports_named_functions_in_process() -> None:
    from datablox import registry
    from datablox.dsl.checker import check
    from datablox.dsl.ir import Connection, Element, Endpoint, Spans, Topology

    topo = Topology(
        "t",
        elements=[
            Element("s", "Generate", {"count": 1}),
            Element("m", "Map", {"fn": "json:dumps"}),
            Element("b", "Map", {"fn": "json:nosuch"}),
            Element("d", "Null"),
        ],
        connections=[
            Connection("push", Endpoint("s", None), Endpoint("m", None)),
            Connection("push", Endpoint("m", None), Endpoint("b", None)),
            Connection("push", Endpoint("b", None), Endpoint("d", None)),
        ],
    )
    _, diags = check(topo, Spans(), resolve=registry.resolve)
    assert [d.message for d in diags] == ["parameter 'fn' of Map: module 'json' has no 'nosuch'"]
