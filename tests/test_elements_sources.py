"""Generate: deterministic synthetic records, counts, pacing and bad parameters."""

from __future__ import annotations

import re
import time

import pytest

from datablox.errors import ParameterError
from datablox.testing import ElementHarness


def test_record_shape_and_keys() -> None:
    h = ElementHarness("Generate", {"count": 12, "keys": 5})
    out = h.run_source()
    assert [r["id"] for r in out] == list(range(12))
    assert [r["ts"] for r in out] == list(range(12))
    assert [r["key"] for r in out[:6]] == ["k0", "k1", "k2", "k3", "k4", "k0"]
    for r in out:
        assert set(r) == {"id", "key", "value", "ts"}
        assert 0.0 <= r["value"] < 1.0
        assert round(r["value"], 6) == r["value"]
    assert h.element.total == 12


def test_same_seed_same_values_other_seed_differs() -> None:
    a = ElementHarness("Generate", {"count": 50, "seed": 7}).run_source()
    b = ElementHarness("Generate", {"count": 50, "seed": 7}).run_source()
    c = ElementHarness("Generate", {"count": 50, "seed": 8}).run_source()
    assert a == b
    assert [r["value"] for r in a] != [r["value"] for r in c]


def test_default_count_and_zero() -> None:
    assert len(ElementHarness("Generate").run_source()) == 1000
    assert ElementHarness("Generate", {"count": 0}).run_source() == []


def test_endless_when_count_is_null() -> None:
    h = ElementHarness("Generate", {"count": None})
    assert h.element.total is None
    assert len(h.run_source(limit=2500)) == 2500


def test_stamp_adds_monotonic_emit_time() -> None:
    before = time.monotonic()
    out = ElementHarness("Generate", {"count": 5, "stamp": True}).run_source()
    after = time.monotonic()
    stamps = [r["t_emit"] for r in out]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after


def test_rate_paces_with_wait() -> None:
    h = ElementHarness("Generate", {"count": 40, "rate": 1000})
    waits: list[float] = []
    # The harness's wait returns at once; record what the element asked for.
    h.ctx._wait = waits.append
    assert len(h.run_source()) == 40
    assert waits, "a paced source must wait between records"
    assert all(0 < w <= 0.04 for w in waits)


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"count": -1}, "count must be >= 0, got -1"),
        ({"rate": 0}, "rate must be > 0 records/s, got 0"),
        ({"keys": 0}, "keys must be >= 1, got 0"),
    ],
)
def test_bad_parameters(params: dict[str, int], text: str) -> None:
    with pytest.raises(ParameterError, match=text):
        ElementHarness("Generate", params)


def test_wrong_parameter_type_is_caught_by_validation() -> None:
    with pytest.raises(
        ParameterError, match=re.escape("parameter 'count' of Generate must be int|null")
    ):
        ElementHarness("Generate", {"count": "many"})
