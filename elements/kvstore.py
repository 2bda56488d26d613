"""A key-value store answering queries, and Lookup, which enriches records by asking one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from datablox.element import Element, Record
from datablox.elements._support import Rejects, iter_json_lines, resolve_files
from datablox.elements.keyed import key_of_request
from datablox.errors import QueryTimeout
from datablox.partition import KeyIndex
from datablox.ports import Param, push_in, push_out, query_in, query_out

__all__ = ["KeyValueStore", "Lookup"]

#: The least time a Lookup gives each answer once its batch's deadline has
#: passed, so answers that have already arrived are still collected.
_MIN_WAIT = 0.001


class KeyValueStore(Element):
    """Keep records by key in memory and answer lookups.

    Ports:
        put (push in): records to store, each under ``record[key]``; a later
            record with the same key replaces the earlier one.
        get (query in): a request ``{"key": k}`` or the bare key ``k``; the
            answer is ``{"found": bool, "value": record or null}``.

    Parameters:
        key (str, "key"): the field holding each record's key.
        path (path|null, null): a JSON-lines file (or glob) loaded at start, as
            if its records had arrived on ``put``.

    Bad input: a stored record without the key field, or with a key that is a
    list or map, goes to the dead letters (for the preload file with ``file``
    and ``line``, as do malformed lines). A request that is a map without
    ``"key"`` is answered with a query error. A preload path naming no file
    stops the element at start.

    The stored records are part of every checkpoint: after a crash the store
    holds exactly what it held at the last one, and the records that came
    after it arrive again.
    """

    ports = (
        push_in("put", doc="records to store"),
        query_in("get", doc='{"key": k} or k -> {"found": bool, "value": record|null}'),
    )
    params = (
        Param("key", "str", default="key", doc="field holding each record's key"),
        Param("path", "path|null", default=None, doc="JSON-lines file loaded at start"),
    )
    reads = ("path",)

    def on_start(self, params: dict[str, Any]) -> None:
        self.key: str = params["key"]
        self.data: dict[Any, Record] = {}
        self.index = KeyIndex()
        self.reject = Rejects(self)
        if params["path"] is not None:
            for path in resolve_files("KeyValueStore", params["path"]):
                for lineno, raw, obj, error in iter_json_lines(path):
                    if error is not None:
                        self.reject(raw, error, file=path, line=lineno)
                    else:
                        self._put(obj, file=path, line=lineno)
            self.log(f"loaded {len(self.data)} keys")

    def _put(self, record: Record, **context: Any) -> None:
        if self.key not in record:
            self.reject(record, f"record has no key field '{self.key}'", **context)
            return
        value = record[self.key]
        if isinstance(value, (list, dict)):
            self.reject(record, f"key field '{self.key}' holds a {type(value).__name__}", **context)
            return
        if value not in self.data:
            self.index.add(value)
        self.data[value] = record

    def on_batch(self, port: str, records: list[Record]) -> None:
        for record in records:
            self._put(record, port=port)

    def snapshot(self) -> Any:
        return self.data

    def restore(self, state: Any) -> None:
        self.data = state
        self.index = KeyIndex(state)

    # a keyed shard of stores: shard(min=1, max=4, key="<the key field>")
    state_key_param = "key"

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        return self.index.take(self.data, partitions)

    def import_partitions(self, state: Any) -> None:
        self.index.put(self.data, state)

    @classmethod
    def request_key(cls, port: str, request: Any, key: Any) -> Any:
        return key_of_request(request)

    def on_query(self, port: str, request: Any) -> Any:
        if isinstance(request, dict):
            if "key" not in request:
                raise KeyError(f'a request is {{"key": k}} or a bare key; got {request!r}')
            request = request["key"]
        if isinstance(request, (list, dict)):
            raise TypeError(f"a key cannot be a {type(request).__name__}: {request!r}")
        value = self.data.get(request)
        return {"found": value is not None, "value": value}


class Lookup(Element):
    """Enrich each record with the answer to a key lookup (e.g. in a KeyValueStore).

    Ports:
        in (push in): records with the ``key`` field.
        ask (query out): asks ``{"key": record[key]}``; expects an answer map
            with ``"value"`` (as KeyValueStore gives).
        out (push out): each record with ``into`` set to the answer's
            ``"value"`` (null when not found).

    Parameters:
        key (str, "key"): the field whose value is looked up.
        into (str, "match"): the field that receives the answer.
        timeout (number, 5.0): seconds to wait for a batch's answers.

    All of a batch's queries are sent before the first answer is awaited, so
    the round trips overlap. Records are copied, not changed in place.

    Bad input: a record without the key field, a query that fails or times
    out, or an answer that is not a map goes to the dead letters with the error.
    """

    plain_records = True  # builds records from plain values, or passes them on
    ports = (
        push_in("in"),
        push_out("out"),
        query_out("ask", doc='asks {"key": k}; expects {"value": ...}'),
    )
    params = (
        Param("key", "str", default="key", doc="field to look up"),
        Param("into", "str", default="match", doc="field that receives the answer's value"),
        Param("timeout", "number", default=5.0, doc="seconds to wait for a batch's answers"),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.key: str = params["key"]
        self.into: str = params["into"]
        self.timeout: float = params["timeout"]
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        key = self.key
        pending: list[tuple[Record, Any]] = []
        for record in records:
            if key not in record:
                self.reject(record, f"record has no key field '{key}'", port=port)
                continue
            try:
                pending.append((record, self.ask_async({"key": record[key]})))
            except Exception as exc:
                self.reject(record, f"query failed: {exc}", port=port)
        # One deadline for the batch: the queries went out together, so waiting
        # the full timeout per answer would let one dead store stall for ages.
        deadline = time.monotonic() + self.timeout
        out: list[Record] = []
        for record, handle in pending:
            try:
                answer = handle.result(max(deadline - time.monotonic(), _MIN_WAIT))
            except QueryTimeout:
                self.reject(record, f"no answer within {self.timeout} s", port=port)
                continue
            except Exception as exc:
                self.reject(record, f"query failed: {exc}", port=port)
                continue
            if not isinstance(answer, dict):
                self.reject(record, f"answer is not a map: {answer!r}", port=port)
                continue
            out.append({**record, self.into: answer.get("value")})
        if out:
            self.emit_many(out)
