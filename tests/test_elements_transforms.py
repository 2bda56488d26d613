"""Filter and Map: expressions over batches, per-record error isolation, user functions."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from datablox.errors import ExpressionError, ParameterError
from datablox.registry import resolve
from datablox.testing import ElementHarness


def test_filter_keeps_true_records_in_order() -> None:
    h = ElementHarness("Filter", {"where": "value > 0.5"})
    records = [{"value": 0.9, "i": 0}, {"value": 0.1, "i": 1}, {"value": 0.7, "i": 2}, {"i": 3}]
    assert h.push(records) == [records[0], records[2]]
    assert h.dead_letters == []


def test_filter_nested_fields() -> None:
    h = ElementHarness("Filter", {"where": "candidate.magpsf < 18 and exists(candidate.fid)"})
    recs = [{"candidate": {"magpsf": 17, "fid": 1}}, {"candidate": {"magpsf": 17}}, {}]
    assert h.push(recs) == recs[:1]


def test_filter_isolates_bad_records() -> None:
    h = ElementHarness("Filter", {"where": "value + 1 > 1.5"}, name="f")
    records = [{"value": 0.9}, {"value": "x"}, {"value": 0.8}, {"value": 0.1}]
    assert h.push(records) == [{"value": 0.9}, {"value": 0.8}]
    assert len(h.dead_letters) == 1
    dead = h.dead_letters[0]
    assert dead["record"] == {"value": "x"}
    assert dead["port"] == "in"
    assert dead["element"] == "f"
    assert dead["error"] == (
        "cannot apply '+' to str 'x' and int 1 (column 7 of expression 'value + 1 > 1.5')"
    )


def test_filter_bad_expression_fails_at_start() -> None:
    with pytest.raises(ExpressionError, match="syntax error at column 7"):
        ElementHarness("Filter", {"where": "value = 1"})


def test_filter_and_map_are_cheap() -> None:
    assert resolve("Filter").cheap and resolve("Map").cheap


def test_map_set_uses_incoming_record() -> None:
    h = ElementHarness("Map", {"set": {"a": "b", "b": "a", "double": "a * 2"}})
    assert h.push([{"a": 1, "b": 2}]) == [{"a": 2, "b": 1, "double": 2}]


def test_map_drop() -> None:
    h = ElementHarness("Map", {"drop": ["secret", "absent"]})
    assert h.push([{"a": 1, "secret": "x"}]) == [{"a": 1}]


def test_map_set_then_drop() -> None:
    h = ElementHarness("Map", {"set": {"total": "a + b"}, "drop": ["a", "b"]})
    assert h.push([{"a": 1, "b": 2, "c": 3}]) == [{"c": 3, "total": 3}]


def test_map_bad_record_goes_to_dead_letters() -> None:
    h = ElementHarness("Map", {"set": {"n": "int(text)"}})
    out = h.push([{"text": "1"}, {"text": "one"}, {"text": "3"}])
    assert out == [{"text": "1", "n": 1}, {"text": "3", "n": 3}]
    assert h.dead_letters[0]["record"] == {"text": "one"}
    assert "int() cannot convert str 'one' to a number" in h.dead_letters[0]["error"]


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "user_fns.py").write_text(
        textwrap.dedent(
            """
            calls = []

            def explode(record):
                calls.append(record["n"])
                if record["n"] == 0:
                    return None
                if record["n"] < 0:
                    raise ValueError("negative n")
                if record["n"] == 99:
                    return 42
                record["seen"] = True
                return [dict(record, part=i) for i in range(record["n"])]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_fns"
    sys.modules.pop("user_fns", None)


def test_map_fn_returns_none_one_or_many(user_module: str) -> None:
    h = ElementHarness("Map", {"fn": f"{user_module}:explode"})
    out = h.push([{"n": 0}, {"n": 2}, {"n": -1}, {"n": 99}, {"n": 1}])
    assert out == [
        {"n": 2, "seen": True, "part": 0},
        {"n": 2, "seen": True, "part": 1},
        {"n": 1, "seen": True, "part": 0},
    ]
    errors = [(d["record"], d["error"]) for d in h.dead_letters]
    assert errors == [
        ({"n": -1}, "ValueError: negative n"),
        ({"n": 99}, "TypeError: fn returned int; expected a record (dict), a list of them or None"),
    ]
    # Each record ran through fn exactly once despite the failures.
    assert sys.modules[user_module].calls == [0, 2, -1, 99, 1]


def test_map_fn_runs_after_set(user_module: str) -> None:
    h = ElementHarness("Map", {"fn": f"{user_module}:explode", "set": {"n": "n - 1"}})
    assert h.push([{"n": 2}]) == [{"n": 1, "seen": True, "part": 0}]


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({}, "Map needs at least one of: set, drop, fn"),
        ({"set": {}, "drop": []}, "Map needs at least one of"),
        ({"fn": "nocolon"}, "is not a function reference"),
        ({"fn": "no_such_module_xyz:f"}, "cannot import module 'no_such_module_xyz'"),
        ({"fn": "json:nothing"}, "module 'json' has no 'nothing'"),
        ({"fn": "json:__doc__"}, "is not callable"),
        ({"set": {"x": 3}}, "set.x must be an expression string"),
    ],
)
def test_map_bad_parameters(params: dict[str, object], text: str) -> None:
    with pytest.raises(ParameterError, match=text):
        ElementHarness("Map", params)


def test_map_bad_expression_names_the_field() -> None:
    with pytest.raises(ExpressionError, match=r"^Map set\.y: syntax error at column 4"):
        ElementHarness("Map", {"set": {"y": "a +* b"}})
