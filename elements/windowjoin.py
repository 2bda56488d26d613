"""The windowed JOIN of two streams, partitioned over a keyed shard.

Pairs with equal join values whose event times are within a window; the
built-in group ``WindowJoin`` wires it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from datablox.element import MISSING, Element, Record, key_value
from datablox.elements._support import Rejects
from datablox.elements.join import FIELDS, ROUTED, join_fields
from datablox.partition import partition_of
from datablox.ports import Param, push_in, push_out

__all__ = ["WindowJoinMember"]


class _Window:
    """One partition's state in a windowed join: per side, the largest event time seen and
    the records kept, in time buckets of one window each."""

    __slots__ = ("buckets", "seen")

    def __init__(self) -> None:
        self.seen: list[float | None] = [None, None]
        self.buckets: list[dict[int, list[tuple[float, Any, Record]]]] = [{}, {}]


class WindowJoinMember(Element):
    """JOIN of two streams within a time window (a keyed shard over the join fields).

    A left and a right record join when their join values are equal and their
    event times differ by at most ``window``; each pair gives one record, the
    left one with the right one in ``into``.

    Event time may be out of order: per partition and side, a record more than
    ``lateness`` behind the latest time seen on its side is late — it goes to
    ``late`` (counted, never silently dropped) and joins nothing. Kept records
    are dropped once no record that is not late could still join them; they are
    kept in time buckets of one window, each made when the first record needs it.

    Ports:
        left (push in): the left stream.
        right (push in): the right stream (through PREJOIN with ``route_as`` when its
            join fields are named differently).
        out (push out): joined records.
        late (push out): late records, with ``"side"``: "left" or "right".

    Parameters:
        key (str or list, required): the join field(s) of the left stream; the shard key.
        time (str, required): the left stream's event-time field (a number of seconds).
        right_time (str|null, null): the right stream's (default: ``time``).
        window (number, required): the largest time difference of a pair.
        lateness (number|null, null): how far behind a record may be (default: ``window``).
        into (str, "match"): the field that receives the right record.

    Bad input: a record without the join fields, or without a finite number in its
    time field, goes to the dead letters.
    """

    ports = (
        push_in("left", doc="the left stream"),
        push_in("right", doc="the right stream"),
        push_out("out", doc="joined pairs"),
        push_out("late", doc="records that came after their window closed"),
    )
    params = (
        FIELDS,
        Param("time", "str", doc="event-time field of the left stream"),
        Param("right_time", "str|null", None, doc="event-time field of the right stream"),
        Param("window", "number", doc="largest time difference of a pair", above=0),
        Param(
            "lateness",
            "number|null",
            None,
            doc="how late a record may be (default window)",
            least=0,
        ),
        Param("into", "str", "match"),
    )
    state_key_param = "key"

    def on_start(self, params: dict[str, Any]) -> None:
        self.on = join_fields(params["key"], "key")
        self.times = (params["time"], params["right_time"] or params["time"])
        self.window = float(params["window"])
        lateness = params["lateness"]
        self.lateness = self.window if lateness is None else float(lateness)
        self.into = params["into"]
        self.parts: dict[int, _Window] = {}
        self.late = 0
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        side = 0 if port == "left" else 1
        on, tfield, window = self.on, self.times[side], self.window
        out: list[Record] = []
        late: list[Record] = []
        for record in records:
            key = key_value(record, on)
            if isinstance(record, dict) and ROUTED in record:
                record = record[ROUTED]  # routed by PREJOIN under the left side's names
            t = record.get(tfield) if isinstance(record, dict) else None
            if (
                key is MISSING
                or not isinstance(t, (int, float))
                or isinstance(t, bool)
                or (isinstance(t, float) and not math.isfinite(t))
            ):
                self.reject(
                    record, f"record has no join field or no finite number in '{tfield}'", port=port
                )
                continue
            p = partition_of(key)
            part = self.parts.get(p)
            if part is None:
                part = self.parts[p] = _Window()
            seen = part.seen[side]
            if seen is not None and t < seen - self.lateness:
                self.late += 1
                late.append({**record, "side": port})
                continue
            # join with the other side's records within the window
            other = part.buckets[1 - side]
            b = int(t // window)
            for bucket in (b - 1, b, b + 1):
                for t2, key2, rec2 in other.get(bucket, ()):
                    if key2 == key and abs(t2 - t) <= window:
                        if side == 0:
                            out.append({**record, self.into: rec2})
                        else:
                            out.append({**rec2, self.into: record})
            part.buckets[side].setdefault(b, []).append((t, key, record))
            if seen is None or t > seen:
                part.seen[side] = t
                # the other side's records older than any record of this side that is
                # not late could join are done with
                horizon = t - self.lateness - window
                for bucket in [x for x in other if (x + 1) * window <= horizon]:
                    del other[bucket]
        if out:
            self.emit_many(out)
        if late:
            self.emit_many(late, port="late")

    def on_finish(self) -> None:
        if self.late:
            self.log(f"{self.late:,} late record(s) sent to 'late'")

    def snapshot(self) -> Any:
        return {"parts": self.parts_state(self.parts), "late": self.late}

    def restore(self, state: Any) -> None:
        self.parts = self.parts_from(state["parts"])
        self.late = state["late"]

    @staticmethod
    def parts_state(parts: dict[int, _Window]) -> dict[int, Any]:
        return {p: (w.seen, w.buckets) for p, w in parts.items()}

    @staticmethod
    def parts_from(state: dict[int, Any]) -> dict[int, _Window]:
        parts = {}
        for p, (seen, buckets) in state.items():
            w = parts[p] = _Window()
            w.seen, w.buckets = list(seen), list(buckets)
        return parts

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        moving = {p: self.parts.pop(p) for p in partitions if p in self.parts}
        return self.parts_state(moving)

    def import_partitions(self, state: Any) -> None:
        self.parts.update(self.parts_from(state))

    def member_cost(self) -> int | None:
        return 0
