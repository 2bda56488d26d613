"""Element classes of the chaos tests (referenced as chaos_elements:Class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from datablox import Element, Param, push_in


class KeyCounts(Element):
    """Counts records and sums ``value`` per key; writes {key: [count, sum]} when inputs end.

    Its counts are its state: they are snapshotted at every checkpoint.
    """

    ports = (push_in("in"),)
    params = (Param("path", "path"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = Path(params["path"])
        self.counts: dict[str, list[Any]] = {}

    def on_batch(self, port: str, records: list[Any]) -> None:
        counts = self.counts
        for record in records:
            entry = counts.get(record["key"])
            if entry is None:
                counts[record["key"]] = [1, record["id"]]
            else:
                entry[0] += 1
                entry[1] += record["id"]

    def snapshot(self) -> Any:
        return self.counts

    def restore(self, state: Any) -> None:
        self.counts = state

    def on_finish(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(orjson.dumps(self.counts, option=orjson.OPT_SORT_KEYS))
