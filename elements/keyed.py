"""KeyCount: counts records per key, keyed state that moves between shard members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datablox.element import MISSING, Element, Record, field_value
from datablox.elements._support import Rejects
from datablox.partition import KeyIndex
from datablox.ports import Param, push_in, push_out, query_in

__all__ = ["KeyCount", "key_of_request"]


def key_of_request(request: Any) -> Any:
    """The key of a ``{"key": k}`` or bare ``k`` request."""
    return request.get("key") if isinstance(request, dict) else request


class KeyCount(Element):
    """Count records per value of a key field; a keyed shard of it moves counts between members.

    Ports:
        in (push in): records with the ``key`` field.
        out (push out): with ``emit="finish"``, one ``{key: k, "count": n}`` per
            key when the inputs end; with ``emit="each"``, every record as it
            arrives with ``"count"`` set to its key's count so far.
        get (query in): ``{"key": k}`` or the bare key ``k``; the answer is the
            count so far (0 for an unknown key).

    Parameters:
        key (str, required): the field to count by (a dotted path reaches into
            nested maps).
        emit (str, "finish"): "finish" or "each" (see ``out``).

    Sharding: ``shard(min=1, max=8, key="<the same field>")``; the counts are
    kept per partition and move with their partitions. Bad input: a record
    without the key field, or whose key is a list or map, goes to the dead
    letters.
    """

    ports = (push_in("in"), push_out("out"), query_in("get", doc="{key: k} or k -> count"))
    params = (
        Param("key", "str", doc="field to count by"),
        Param("emit", "str", default="finish", doc="finish or each", choices=("finish", "each")),
    )
    state_key_param = "key"

    def on_start(self, params: dict[str, Any]) -> None:
        self.key: str = params["key"]
        self.each = params["emit"] == "each"
        self.counts: dict[Any, int] = {}
        self.index = KeyIndex()
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        counts, key, index = self.counts, self.key, self.index
        out: list[Record] | None = [] if self.each else None
        for record in records:
            value = field_value(record, key)
            if value is MISSING:
                self.reject(record, f"record has no key field '{key}'", port=port)
                continue
            if isinstance(value, (list, dict)):
                self.reject(record, f"key field '{key}' holds a {type(value).__name__}", port=port)
                continue
            n = counts.get(value, 0) + 1
            counts[value] = n
            if n == 1:
                index.add(value)
            if out is not None:
                out.append({**record, "count": n})
        if out:
            self.emit_many(out)

    def on_query(self, port: str, request: Any) -> Any:
        return self.counts.get(key_of_request(request), 0)

    @classmethod
    def request_key(cls, port: str, request: Any, key: Any) -> Any:
        return key_of_request(request)

    def on_finish(self) -> None:
        if not self.each:
            self.emit_many([{self.key: k, "count": n} for k, n in self.counts.items()])

    def snapshot(self) -> Any:
        return self.counts

    def restore(self, state: Any) -> None:
        self.counts = state
        self.index = KeyIndex(state)

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        return self.index.take(self.counts, partitions)

    def import_partitions(self, state: Any) -> None:
        self.index.put(self.counts, state)

    def member_cost(self) -> int | None:
        # moving state back costs a round per ~100,000 keys
        return min(5, len(self.counts) // 100_000)
