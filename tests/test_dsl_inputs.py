"""Syntax errors, imports, overrides, tradecraft JSON input and the renderer."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from datablox.dsl import (
    Diagnostic,
    JsonPath,
    Span,
    compile_file,
    compile_source,
    load_any,
    load_tradecraft,
)
from datablox.dsl.diagnostics import render
from datablox.dsl.overrides import parse_override
from datablox.errors import TopologyError

CASES = Path(__file__).parent / "dslcases"


@pytest.fixture(autouse=True)
def _in_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)


def block(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def failure(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TopologyError) as info:
        call(*args)
    return str(info.value)


def syntax(text: str) -> str:
    return failure(compile_source, textwrap.dedent(text).lstrip("\n"), "t.topo")


# ---- syntax ------------------------------------------------------------------
def test_syntax_error_says_what_was_expected() -> None:
    assert syntax(
        """
        topology t {
            element x Y()
        }
        """
    ) == block(
        """
        error: unexpected 'Y'; expected '='
         --> t.topo:2:15
          |
        2 |     element x Y()
          |               ^
          = hint: write 'element NAME = Class(param=value, ...)'; parameters are name=value
        """
    )


def test_missing_value_is_expected_in_words() -> None:
    out = syntax("topology t {\n  element x = cases:Thing(x=)\n}\n")
    assert out.startswith("error: unexpected ')'; expected a value\n --> t.topo:2:29")


def test_unexpected_end_of_file() -> None:
    out = syntax("topology t {\n  element x = cases:Thing()\n")
    assert out.splitlines()[0].startswith("error: unexpected end of file; expected ")
    assert "'}'" in out.splitlines()[0]
    assert out.endswith("= hint: is a '}' or ')' missing?")


def test_unexpected_character() -> None:
    assert syntax("topology t {\n  a @ b\n}") == block(
        """
        error: unexpected character '@'
         --> t.topo:2:5
          |
        2 |   a @ b
          |     ^
          = hint: names are ASCII letters, digits and '_'; strings are quoted; '#' starts a comment
        """
    )


def test_keywords_are_reserved() -> None:
    out = syntax("topology t {\n  element on = cases:Thing()\n}")
    assert out.startswith("error: unexpected 'on'; expected a name\n --> t.topo:2:11")


def test_bad_string_escape() -> None:
    out = syntax('topology t { element x = cases:Thing(x="a\\q") }')
    assert out.startswith("error: unknown escape '\\q' in string\n --> t.topo:1:40")


def test_placement_given_twice() -> None:
    out = syntax("topology t { element x = cases:Thing() on a on b }")
    assert out.startswith("error: 'on' given twice\n --> t.topo:1:48")


# ---- files and imports ---------------------------------------------------------
def test_import_cycle() -> None:
    assert failure(compile_file, "cycle_a.topo") == block(
        """
        error: import cycle: cycle_a.topo -> cycle_b.topo -> cycle_c.topo -> cycle_a.topo
         --> sub/cycle_c.topo:2:8
          |
        2 | import "../cycle_a.topo"
          |        ^^^^^^^^^^^^^^^^^
          = hint: move the shared groups into a file that imports neither
        """
    )


def test_missing_import_and_imported_topology() -> None:
    assert failure(compile_file, "imports_topology.topo") == block(
        f"""
        error: imported file 'alerts.topo' defines topology 'alerts'
         --> alerts.topo:4:10
          |
        4 | topology alerts {{
          |          ^^^^^^
          = hint: only groups can be imported; move the topology to its own file

        error: cannot read imported file 'missing.topo': No such file or directory
         --> imports_topology.topo:2:8
          |
        2 | import "missing.topo"
          |        ^^^^^^^^^^^^^^
          = hint: import paths are relative to the importing file's folder ({CASES.resolve()})
        """
    )


def test_file_without_topology_and_with_two() -> None:
    assert failure(compile_file, "common.topo") == block(
        """
        error: no topology in this file
         --> common.topo
          = hint: write `topology NAME { ... }`; a file of groups only can be imported
        """
    )
    out = syntax("topology a { }\ntopology b { }\n")
    assert out.startswith("error: second topology 'b' in one file\n --> t.topo:2:10")


def test_missing_file_is_a_clear_error() -> None:
    assert failure(load_any, "nope.topo") == "error: cannot read 'nope.topo': no such file"
    assert failure(compile_file, "sub") == "error: cannot read 'sub': it is a folder"
    assert failure(load_any, "x.txt") == block(
        """
        error: don't know how to read 'x.txt'
          = hint: give a .topo file or a tradecraft .json file
        """
    )


# ---- overrides ---------------------------------------------------------------
def test_parse_override() -> None:
    assert parse_override("g/f.where=x > 1") == ("g/f", "where", "x > 1")
    assert parse_override("a.b.c=1") == ("a.b", "c", 1)
    assert parse_override("a.b=[1, 'x']") == ("a", "b", [1, "x"])
    assert parse_override("a.b=true") == ("a", "b", True)
    assert parse_override("a.b=null") == ("a", "b", None)
    assert parse_override("a.b=plain") == ("a", "b", "plain")
    assert parse_override("a.b=[plain]") == ("a", "b", "[plain]")
    assert parse_override("a.b=") == ("a", "b", "")
    assert parse_override("ab=1") is None
    assert parse_override("a.b") is None


def test_bad_overrides() -> None:
    out = failure(
        compile_file, "alerts.topo", ["g/f.limit=abc", "srx.count=1", "nodot", "src.cnt=3"]
    )
    assert out == block(
        """
        error: override names unknown element 'srx'
         --> override: srx.count=1
          = hint: did you mean 'src'?

        error: override 'nodot' is not of the form element.param=value
         --> override: nodot
          = hint: for example: src.count=10 or g/f.where='x > 1'

        error: cases:Gen has no parameter 'cnt'
         --> override: src.cnt=3
          = hint: did you mean 'count'?

        error: parameter 'limit' of cases:Filt must be int, got str 'abc'
         --> override: g/f.limit=abc
        """
    )


# ---- tradecraft JSON -------------------------------------------------------------
def _tradecraft() -> dict:
    return compile_file("alerts.topo").tradecraft


def test_json_structural_errors_are_located_by_path(tmp_path: Path) -> None:
    data = _tradecraft()
    data["elements"][2]["params"] = []
    data["elements"][3]["id"] = 9
    data["elements"][4]["node"] = 3
    data["connections"][0]["kind"] = "pull"
    data["connections"][1]["from"] = {"element": "src"}
    data["feeds"][0] = "matches"
    data["fuse"] = [["src", 1]]
    data["extra"] = 1
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    assert failure(load_tradecraft, str(path)).replace(str(path), "x.json") == block(
        """
        error: unknown key 'extra'
         --> x.json: extra
          = hint: allowed keys: connections, elements, feeds, fuse, name, search_path, tradecraft

        error: expected an object, got list
         --> x.json: elements[2].params

        error: element id must be 3 (ids count from 0 in order), got 9
         --> x.json: elements[3].id

        error: expected a string or null, got int
         --> x.json: elements[4].node

        error: connection kind must be 'push' or 'query', got 'pull'
         --> x.json: connections[0].kind

        error: missing key 'port'
         --> x.json: connections[1].from

        error: expected an object, got str
         --> x.json: feeds[0]

        error: expected an element name, got int
         --> x.json: fuse[0][1]
        """
    )


def test_json_semantic_errors_use_the_same_checks() -> None:
    data = _tradecraft()
    data["elements"][1]["class"] = "cases:Thingg"
    data["elements"][5]["params"]["every"] = "often"
    data["connections"][3]["to"]["port"] = "inn"
    data["connections"].append(
        {"id": 6, "kind": "push", "from": {"element": "src", "port": "out"},
         "to": {"element": "dbb", "port": "in"}}
    )  # fmt: skip
    data["fuse"].append(["src"])
    assert failure(load_tradecraft, data) == block(
        """
        error: module 'cases' has no class 'Thingg'
         --> <tradecraft>: elements[1].class
          = hint: did you mean 'Thing'?

        error: parameter 'every' of cases:Probe must be int, got str 'often'
         --> <tradecraft>: elements[5].params.every

        error: element 'db' (cases:Sink) has no port 'inn'
         --> <tradecraft>: connections[3].to
          = hint: did you mean 'in'? its ports: in (in push), lookup (in query)

        error: unknown element 'dbb'
         --> <tradecraft>: connections[6].to
          = hint: did you mean 'db'?

        error: 'src' is in two fuse groups
         --> <tradecraft>: fuse[1][0]
          = hint: an element runs in one process; merge the two fuse statements
        """
    )


def test_invalid_json_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": [1,\n}')
    assert failure(load_any, str(path)).replace(str(path), "bad.json") == block(
        """
        error: invalid JSON: Expecting value
         --> bad.json:3:1
          |
        3 | }
          | ^
        """
    )


def test_json_must_be_an_object() -> None:
    assert failure(load_tradecraft, {"tradecraft": 2, "name": "x"}) == block(
        """
        error: missing key 'elements'
         --> <tradecraft>: (top level)

        error: unsupported tradecraft version 2
         --> <tradecraft>: tradecraft
          = hint: this datablox reads version 1
        """
    )


# ---- renderer ----------------------------------------------------------------
def test_renderer_aligns_wide_line_numbers_and_tabs() -> None:
    text = "\n" * 11 + "\telement x = Y()\n"
    diag = Diagnostic("error", "bad", Span("f.topo", 12, 14, 15), "fix it")
    assert render([diag], {"f.topo": text}) == (
        "error: bad\n"
        "  --> f.topo:12:14\n"
        "   |\n"
        "12 | \telement x = Y()\n"
        "   | \t            ^\n"
        "   = hint: fix it"
    )


def test_renderer_without_source_or_span() -> None:
    assert str(Diagnostic("warning", "w", JsonPath("x.json", "elements[0]"))) == (
        "warning: w\n --> x.json: elements[0]"
    )
    assert str(Diagnostic("error", "e", None, "h")) == "error: e\n  = hint: h"


def test_json_duplicate_element_names() -> None:
    data = {
        "tradecraft": 1,
        "name": "d",
        "elements": [{"name": "s", "class": "cases:Src"}, {"name": "s", "class": "cases:Src"}],
        "feeds": [{"name": "f", "element": "s", "port": "out"}],
    }
    assert failure(load_tradecraft, data) == block(
        """
        error: duplicate element name 's'
         --> <tradecraft>: elements[1].name
          = hint: first declared at <tradecraft>: elements[0].name
        """
    )


def test_json_names_must_be_names_a_topo_file_can_spell() -> None:
    """Before: tradecraft took 'a b#2' (a shard member's spelling) or 'element' as names."""
    data = {
        "tradecraft": 1,
        "name": "my-topo",
        "elements": [
            {"name": "a b#2", "class": "cases:Src"},
            {"name": "g/element", "class": "cases:Src"},
            {"name": "g/inner_1", "class": "cases:Src"},
        ],
        "feeds": [{"name": "f/x", "element": "g/inner_1", "port": "out"}],
    }
    assert failure(load_tradecraft, data) == block(
        """
        error: topology name 'my-topo' is not a name a .topo file can spell
         --> <tradecraft>: name
          = hint: use letters, digits and _, not starting with a digit

        error: element name 'a b#2' is not a name a .topo file can spell
         --> <tradecraft>: elements[0].name
          = hint: use letters, digits and _, not starting with a digit (in a group: group/name)

        error: element name 'g/element' uses 'element', a reserved word of the .topo language
         --> <tradecraft>: elements[1].name
          = hint: choose another name

        error: feed name 'f/x' is not a name a .topo file can spell
         --> <tradecraft>: feeds[0].name
          = hint: use letters, digits and _, not starting with a digit
        """
    )
