"""Terminal sinks: Count (how many records arrived) and Null (discard everything)."""

from __future__ import annotations

from typing import Any

import orjson

from datablox.element import Element, Record
from datablox.elements._support import check_output, open_output
from datablox.ports import Param, push_in

__all__ = ["Count", "Null"]


class Count(Element):
    """Count the records that arrive.

    Ports:
        in (push in): any records.

    Parameters:
        path (path|null, null): when given, ``{"count": n}`` is written there as
            JSON when the inputs end (parent folders are created).

    The count is logged when the inputs end, and survives crashes (it is part
    of every checkpoint). Bad input: none; every record counts.
    """

    ports = (push_in("in"),)
    params = (Param("path", "path|null", default=None, doc='file to write {"count": n} to'),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path: str | None = params["path"]
        if self.path:
            check_output("Count", self.path)
        self.count = 0

    def on_batch(self, port: str, records: list[Record]) -> None:
        self.count += len(records)

    def snapshot(self) -> Any:
        return self.count

    def restore(self, state: Any) -> None:
        self.count = state

    def on_finish(self) -> None:
        self.log(f"count: {self.count}")
        if self.path:
            with open_output(self.path) as fh:
                fh.write(orjson.dumps({"count": self.count}) + b"\n")


class Null(Element):
    """Discard every record (a sink for benchmarks and for unused outputs).

    Ports:
        in (push in): any records.

    Parameters: none. Bad input: none.
    """

    ports = (push_in("in"),)
    cheap = True

    def on_batch(self, port: str, records: list[Record]) -> None:
        pass
