"""The per-record work every pipeline in the benchmark does, shared with the peers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any


def records(count: int, keys: int = 100, seed: int = 1) -> Iterator[dict[str, Any]]:
    """The synthetic records every system starts from: the same as Generate's, built the
    same way (key names made once, the value rounded to 6 digits), one at a time."""
    rng = random.Random(seed)
    names = [f"k{i}" for i in range(keys)]
    for i in range(count):
        yield {"id": i, "key": names[i % keys], "value": round(rng.random(), 6), "ts": i}


def enrich(record: dict[str, Any]) -> dict[str, Any]:
    """The map step: derive a field."""
    record["v2"] = record["value"] * 2
    return record


def keep(record: dict[str, Any]) -> bool:
    """The filter step, as a Python predicate (datablox uses the expression 'v2 > 0.5')."""
    return bool(record["v2"] > 0.5)
