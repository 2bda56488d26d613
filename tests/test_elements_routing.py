"""Director and Manager: every record to exactly one connection, bad keys to dead letters."""

from __future__ import annotations

import pytest

from datablox.errors import ParameterError
from datablox.partition import owner_of, partition_of
from datablox.testing import ElementHarness


def _spread(h: ElementHarness, n: int) -> list[list[dict]]:
    return [h.take_connection(i) for i in range(n)]


def _route(h: ElementHarness, records: list[dict]) -> None:
    # Not h.push: it drains every connection of "out" into one list, and the
    # point here is which connection each record went to.
    h.handler.batch("in", records)


def test_director_routes_by_partition_of_key() -> None:
    h = ElementHarness("Director", {"key": "key"}, connections={"out": 3})
    records = [{"key": f"k{i % 10}", "i": i} for i in range(100)]
    _route(h, records)
    spread = _spread(h, 3)
    assert sum(len(s) for s in spread) == 100
    for index, got in enumerate(spread):
        for r in got:
            assert owner_of(partition_of(r["key"]), 3) == index
    # Equal keys always meet at one connection.
    homes = {r["key"]: i for i, got in enumerate(spread) for r in got}
    assert len(homes) == 10
    assert all(homes[r["key"]] == i for i, got in enumerate(spread) for r in got)


def test_director_int_and_float_keys_agree() -> None:
    h = ElementHarness("Director", {"key": "k"}, connections={"out": 4})
    _route(h, [{"k": 7}, {"k": 7.0}])
    assert [len(s) for s in _spread(h, 4) if s] == [2]


def test_director_dotted_key_and_missing_key() -> None:
    h = ElementHarness("Director", {"key": "obj.id"}, connections={"out": 2}, name="d")
    _route(h, [{"obj": {"id": 1}}, {"obj": {}}, {"other": 1}, {"obj.id": 5}])
    assert sum(len(s) for s in _spread(h, 2)) == 2
    assert [d["record"] for d in h.dead_letters] == [{"obj": {}}, {"other": 1}]
    assert h.dead_letters[0]["error"] == "record has no key field 'obj.id'"
    assert h.dead_letters[0]["port"] == "in"


def test_manager_routes_by_time_window() -> None:
    h = ElementHarness("Manager", {"key": "ts", "window": 10}, connections={"out": 3})
    _route(h, [{"ts": t} for t in (0, 9.99, 10, 25, 30, 61)])
    spread = _spread(h, 3)
    assert [[r["ts"] for r in s] for s in spread] == [[0, 9.99, 30, 61], [10], [25]]


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({}, "record has no time field 'ts'"),
        ({"ts": "soon"}, "time field 'ts' must be a number of seconds, got 'soon'"),
        ({"ts": True}, "time field 'ts' must be a number of seconds, got True"),
        ({"ts": None}, "time field 'ts' must be a number of seconds, got None"),
        ({"ts": float("inf")}, "time field 'ts' is not finite: inf"),
    ],
)
def test_manager_bad_time_goes_to_dead_letters(record: dict, error: str) -> None:
    h = ElementHarness("Manager", {"key": "ts", "window": 1.5}, connections={"out": 2})
    _route(h, [record, {"ts": 1}])
    assert sum(len(s) for s in _spread(h, 2)) == 1
    assert [(d["record"], d["error"]) for d in h.dead_letters] == [(record, error)]


def test_manager_window_must_be_positive() -> None:
    with pytest.raises(ParameterError, match="'window' of Manager must be more than 0, got 0"):
        ElementHarness("Manager", {"key": "ts", "window": 0})
