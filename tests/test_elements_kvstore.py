"""KeyValueStore and Lookup: storing, answering, preloading, enrichment and failures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from datablox.errors import ParameterError, QueryError
from datablox.testing import ElementHarness


def test_store_put_and_get() -> None:
    h = ElementHarness("KeyValueStore")
    h.push([{"key": "a", "v": 1}, {"key": "b", "v": 2}, {"key": "a", "v": 3}], port="put")
    assert h.query({"key": "a"}, "get") == {"found": True, "value": {"key": "a", "v": 3}}
    assert h.query("b", "get") == {"found": True, "value": {"key": "b", "v": 2}}
    assert h.query("zz", "get") == {"found": False, "value": None}


def test_store_custom_key_and_bad_records() -> None:
    h = ElementHarness("KeyValueStore", {"key": "id"})
    h.push([{"id": 1}, {"name": "no id"}, {"id": [1, 2]}], port="put")
    assert h.query(1, "get")["found"]
    assert [d["error"] for d in h.dead_letters] == [
        "record has no key field 'id'",
        "key field 'id' holds a list",
    ]
    assert all(d["port"] == "put" for d in h.dead_letters)


def test_store_bad_requests_are_query_errors() -> None:
    h = ElementHarness("KeyValueStore")
    with pytest.raises(QueryError, match=re.escape('a request is {"key": k} or a bare key')):
        h.query({"id": 1}, "get")
    with pytest.raises(QueryError, match="a key cannot be a list"):
        h.query([1], "get")


def test_store_preloads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "profiles.jsonl"
    path.write_text('{"key": "k0", "tier": "gold"}\nnot json\n{"nokey": 1}\n{"key": "k1"}\n')
    h = ElementHarness("KeyValueStore", {"path": str(path)})
    assert h.query("k0", "get")["value"] == {"key": "k0", "tier": "gold"}
    assert h.query("k1", "get")["found"]
    assert [(d["line"], d["file"]) for d in h.dead_letters] == [(2, str(path)), (3, str(path))]
    assert "element: loaded 2 keys" in h.logs


def test_store_missing_preload_file(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"KeyValueStore: file .*none\.jsonl' does not exist"):
        ElementHarness("KeyValueStore", {"path": str(tmp_path / "none.jsonl")})


def _store(records: list[dict[str, Any]]) -> ElementHarness:
    store = ElementHarness("KeyValueStore")
    store.push(records, port="put")
    return store


def test_lookup_enriches_through_a_store() -> None:
    store = _store([{"key": "k1", "tier": "gold"}])
    asked: list[Any] = []

    def answer(request: Any) -> Any:
        asked.append(request)
        return store.query(request, "get")

    h = ElementHarness("Lookup", answerers={"ask": answer})
    record = {"key": "k1", "v": 1}
    out = h.push([record, {"key": "k2"}])
    assert out == [
        {"key": "k1", "v": 1, "match": {"key": "k1", "tier": "gold"}},
        {"key": "k2", "match": None},
    ]
    assert asked == [{"key": "k1"}, {"key": "k2"}]
    assert record == {"key": "k1", "v": 1}


def test_lookup_custom_fields() -> None:
    h = ElementHarness(
        "Lookup", {"key": "id", "into": "profile"}, answerers={"ask": lambda r: {"value": r}}
    )
    assert h.push([{"id": 5}]) == [{"id": 5, "profile": {"key": 5}}]


def test_lookup_failures_go_to_dead_letters() -> None:
    def answer(request: Any) -> Any:
        if request["key"] == "boom":
            raise RuntimeError("store is broken")
        if request["key"] == "odd":
            return "not a map"
        return {"found": True, "value": 1}

    h = ElementHarness("Lookup", answerers={"ask": answer})
    out = h.push([{"key": "a"}, {"key": "boom"}, {"nokey": 1}, {"key": "odd"}, {"key": "b"}])
    assert out == [{"key": "a", "match": 1}, {"key": "b", "match": 1}]
    errors = {str(d["record"]): d["error"] for d in h.dead_letters}
    assert errors == {
        "{'key': 'boom'}": "query failed: RuntimeError: store is broken",
        "{'nokey': 1}": "record has no key field 'key'",
        "{'key': 'odd'}": "answer is not a map: 'not a map'",
    }


def test_lookup_without_answerer_dead_letters_each_record() -> None:
    h = ElementHarness("Lookup")
    assert h.push([{"key": 1}, {"key": 2}]) == []
    assert len(h.dead_letters) == 2
    assert "no answerer connected to query port 'ask'" in h.dead_letters[0]["error"]
