"""JsonLinesSource, JsonLinesSink and CsvSource: reading, writing and bad lines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from datablox.errors import ParameterError
from datablox.testing import ElementHarness


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---- JsonLinesSource -------------------------------------------------------


def test_jsonl_reads_objects_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", '{"a": 1}\n\n   \n{"a": 2, "b": {"c": [1]}}\n')
    h = ElementHarness("JsonLinesSource", {"path": path})
    assert h.run_source() == [{"a": 1}, {"a": 2, "b": {"c": [1]}}]
    assert h.dead_letters == []


def test_jsonl_bad_lines_go_to_dead_letters_with_line_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "bad.jsonl",
        '{"a": 1}\n{"a": 2,\n[1, 2]\n\n"text"\n{"a": 3}\n',
    )
    h = ElementHarness("JsonLinesSource", {"path": path}, name="src")
    assert h.run_source() == [{"a": 1}, {"a": 3}]
    dead = h.dead_letters
    assert [(d["line"], d["record"]) for d in dead] == [
        (2, '{"a": 2,'),
        (3, "[1, 2]"),
        (5, '"text"'),
    ]
    assert all(d["file"] == path and d["element"] == "src" for d in dead)
    assert dead[0]["error"] == "malformed JSON at column 9: unexpected end of data"
    assert dead[1]["error"] == "line holds a JSON list, not an object"
    assert dead[2]["error"] == "line holds a JSON str, not an object"
    assert any("line=2" in line and "dead letters" in line for line in h.logs)


def test_jsonl_glob_reads_files_in_sorted_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.jsonl", '{"f": "b"}\n')
    _write(tmp_path / "a.jsonl", '{"f": "a"}\n')
    _write(tmp_path / "sub" / "c.jsonl", '{"f": "c"}\n')
    _write(tmp_path / "x.txt", '{"f": "x"}\n')
    h = ElementHarness("JsonLinesSource", {"path": str(tmp_path / "*.jsonl")})
    assert [r["f"] for r in h.run_source()] == ["a", "b"]
    h = ElementHarness("JsonLinesSource", {"path": str(tmp_path / "**" / "*.jsonl")})
    assert [r["f"] for r in h.run_source()] == ["a", "b", "c"]


def test_jsonl_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(ParameterError, match=f"JsonLinesSource: file '{missing}' does not exist"):
        ElementHarness("JsonLinesSource", {"path": missing})
    pattern = str(tmp_path / "*.nothing")
    with pytest.raises(ParameterError, match=r"no file matches '.*\*\.nothing'"):
        ElementHarness("JsonLinesSource", {"path": pattern})


# ---- JsonLinesSink ---------------------------------------------------------


def test_sink_writes_lines_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "out" / "deep" / "o.jsonl"
    h = ElementHarness("JsonLinesSink", {"path": str(path)})
    h.push([{"a": 1}, {"b": "x"}])
    h.push([])
    h.push([{"c": None}])
    h.finish()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(x) for x in lines] == [{"a": 1}, {"b": "x"}, {"c": None}]


def test_sink_replaces_or_appends(tmp_path: Path) -> None:
    path = _write(tmp_path / "o.jsonl", '{"old": 1}\n')
    h = ElementHarness("JsonLinesSink", {"path": path, "append": True})
    h.push([{"new": 1}])
    h.finish()
    assert Path(path).read_text().splitlines() == ['{"old": 1}', '{"new":1}']
    h = ElementHarness("JsonLinesSink", {"path": path})
    h.push([{"only": 1}])
    h.finish()
    assert Path(path).read_text().splitlines() == ['{"only":1}']


def test_sink_flushes_each_batch(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    h = ElementHarness("JsonLinesSink", {"path": str(path)})
    h.push([{"a": 1}])
    assert path.read_text() == '{"a":1}\n'
    h.finish()


def test_sink_dead_letters_unencodable_record(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    h = ElementHarness("JsonLinesSink", {"path": str(path)})
    h.push([{"a": 1}, {"bad": {1, 2}}, {"a": 2}])
    h.finish()
    assert path.read_text().splitlines() == ['{"a":1}', '{"a":2}']
    assert len(h.dead_letters) == 1
    assert h.dead_letters[0]["error"].startswith("cannot write the record as JSON")


# ---- CsvSource -------------------------------------------------------------

STATIONS = "id,name,lat,active\n1,Alpha,51.5,true\n2,Beta,48.1,no\n\n3,Gamma,,1\n"


def test_csv_header_and_types(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", STATIONS)
    h = ElementHarness(
        "CsvSource", {"path": path, "types": {"id": "int", "lat": "float", "active": "bool"}}
    )
    assert h.run_source() == [
        {"id": 1, "name": "Alpha", "lat": 51.5, "active": True},
        {"id": 2, "name": "Beta", "lat": 48.1, "active": False},
        {"id": 3, "name": "Gamma", "lat": None, "active": True},
    ]


def test_csv_without_types_gives_strings(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "a;b\n1;x\n")
    h = ElementHarness("CsvSource", {"path": path, "delimiter": ";"})
    assert h.run_source() == [{"a": "1", "b": "x"}]


def test_csv_columns_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "1,Alpha\n2,Beta\n")
    h = ElementHarness(
        "CsvSource",
        {"path": path, "header": False, "columns": ["id", "name"], "types": {"id": "int"}},
    )
    assert h.run_source() == [{"id": 1, "name": "Alpha"}, {"id": 2, "name": "Beta"}]


def test_csv_columns_replace_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "x,y\n1,2\n")
    h = ElementHarness("CsvSource", {"path": path, "columns": ["a", "b"]})
    assert h.run_source() == [{"a": "1", "b": "2"}]


def test_csv_bad_rows_go_to_dead_letters_with_line_numbers(tmp_path: Path) -> None:
    text = (
        'id,name,lat\n1,Alpha,51.5\n2,Beta\nx,Gamma,1.0\n"4","multi\nline",2.0\n'
        "5,Eps,north\n6,Zeta,7\n"
    )
    path = _write(tmp_path / "s.csv", text)
    h = ElementHarness("CsvSource", {"path": path, "types": {"id": "int", "lat": "float"}})
    out = h.run_source()
    assert [r["id"] for r in out] == [1, 4, 6]
    assert out[1]["name"] == "multi\nline"
    dead = [(d["line"], d["error"], d["record"]) for d in h.dead_letters]
    assert dead == [
        (3, "row has 2 fields, expected 3", ["2", "Beta"]),
        (4, "column 'id': cannot convert 'x' to int", ["x", "Gamma", "1.0"]),
        (7, "column 'lat': cannot convert 'north' to float", ["5", "Eps", "north"]),
    ]
    assert all(d["file"] == path for d in h.dead_letters)


def test_csv_bad_bool_explains_accepted_words(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "ok\nmaybe\n")
    h = ElementHarness("CsvSource", {"path": path, "types": {"ok": "bool"}})
    assert h.run_source() == []
    assert h.dead_letters[0]["error"] == (
        "column 'ok': cannot convert 'maybe' to bool (write true/false, yes/no or 1/0)"
    )


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"header": False}, "header=false needs columns"),
        ({"types": {"id": "integer"}}, "unknown type 'integer' for column 'id'"),
        ({"types": {"nope": "int"}}, r"types names column\(s\) \['nope'\]"),
        ({"delimiter": "::"}, "delimiter must be one character"),
    ],
)
def test_csv_bad_parameters(tmp_path: Path, params: dict[str, object], text: str) -> None:
    path = _write(tmp_path / "s.csv", STATIONS)
    with pytest.raises(ParameterError, match=text):
        ElementHarness("CsvSource", {"path": path, **params})


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"CsvSource: file .* does not exist"):
        ElementHarness("CsvSource", {"path": str(tmp_path / "none.csv")})
