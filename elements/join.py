"""The JOIN family: enrich a stream from a dataset, partitioned over a keyed shard.

Four roles, wired by the built-in group ``Join`` (``datablox/dsl/lib/join.topo``):

- ``Enrichment`` (``elements/enrichment.py``) reads the dataset (a JSON-lines or CSV file, re-read
  when it changes; rows another element pushes; or the answer to a query),
  and sends each row, tagged with its dataset version, to the JOIN member
  owning its partition; after the last row of a version it tells every
  member that the version is complete (one copy to each member).
- :class:`PreJoin` receives the stream and hands it to the JOIN members,
  routed by the partition of its join fields.
- :class:`JoinMember` (the JOIN, a keyed shard) holds its partitions of the
  dataset and enriches each stream record from the newest complete version.
- :class:`PostJoin` receives the enriched stream from every member.

Both sides are partitioned by the *stream's* field names: ENRICHMENT copies a
row's join values under them, so a row and the stream records it matches fall
in the same partition whatever each side calls its fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from datablox.element import MISSING, Element, Record, key_value
from datablox.elements._support import Rejects
from datablox.errors import ParameterError
from datablox.partition import KeyIndex, partition_of
from datablox.ports import Param, ParamProblem, Port, push_in, push_out, query_in

__all__ = [
    "JoinMember",
    "PostJoin",
    "PreJoin",
    "join_fields",
]

#: The field of a record PREJOIN wraps when it routes it under other field names.
ROUTED = "$record"
#: ``key=``/``dataset_key=`` take one field (a dotted path reaches into nested maps) or a list.
FIELDS = Param("key", "any", doc="the stream's join field, or a list of them")


def join_fields(value: Any, what: str) -> list[str]:
    """A join parameter as a list of field paths; ParameterError when it is not one."""
    fields = [value] if isinstance(value, str) else value
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, str) and f for f in fields)
    ):
        raise ParameterError(
            f"{what} must be a field name or a non-empty list of field names, got {value!r}",
            what,
        )
    return list(fields)


#: What a join value may be: a list or a map cannot be compared as a key.
JOIN_VALUES = "join values are strings, numbers, booleans or null"


def unjoinable(value: Any, fields: list[str]) -> str | None:
    """Why the join value(s) ``value`` read from ``fields`` cannot be matched, or None."""
    values = (value,) if len(fields) == 1 else value
    for field, one in zip(fields, values):
        if isinstance(one, (list, dict)):
            return f"join field {field} holds a {type(one).__name__}; {JOIN_VALUES}"
    return None


def row_problem(row: Any, dataset_on: list[str]) -> str | None:
    """Why a dataset row cannot be joined (it is no map, lacks a join field, or a join
    field holds a list or a map), or None."""
    if not isinstance(row, dict):
        return f"dataset row is a {type(row).__name__}, not a map"
    values = key_value(row, dataset_on)
    if values is MISSING:
        return f"dataset row has no join field {', '.join(dataset_on)}"
    problem = unjoinable(values, dataset_on)
    return None if problem is None else f"dataset row's {problem}"


def pairing_problem(
    params: dict[str, Any],
    first: str,
    second: str,
    hint: str,
    how: str = "compared pairwise",
    shown: tuple[str, str] | None = None,
) -> list[ParamProblem]:
    """Two field-list parameters paired field by field must name as many fields (check).
    ``shown``: how to call them in the message (a group passes its own names)."""
    try:
        a = join_fields(params.get(first), first)
        b = join_fields(params.get(second), second)
    except ParameterError as exc:
        return [ParamProblem(exc.param or first, str(exc))]
    if len(a) == len(b):
        return []
    one, two = shown or (first, second)
    return [
        ParamProblem(
            second, f"{one} has {len(a)} field(s) and {two} {len(b)}; they are {how}", hint
        )
    ]


def dataset_record(
    row: dict[str, Any], version: int, on: list[str], dataset_on: list[str]
) -> dict[str, Any]:
    """A dataset row as sent to the JOIN: its join values under the stream's field names
    (so it routes like the stream records it matches), the version and the row.
    The row must have passed :func:`row_problem`."""
    values = key_value(row, dataset_on)
    record: dict[str, Any] = {"version": version, "row": row}
    if len(on) == 1:
        record[on[0]] = values
    else:
        for name, value in zip(on, values):
            record[name] = value
    return record


def version_end(version: int, rows: int) -> dict[str, Any]:
    """The record that tells every JOIN member that ``version`` is complete."""
    return {"version": version, "end": True, "rows": rows}


# ---- PREJOIN and POSTJOIN --------------------------------------------------------------


class PreJoin(Element):
    """PREJOIN: receive the stream and hand it to the JOIN members by partition.

    Ports:
        in (push in): the stream.
        out (push out): to the JOIN (routed by the partition of the join fields).
        state (query in): answers true once the stream has ended (asked by ENRICHMENT).

    Parameters:
        key (str or list, required): the stream's join field(s).
        route_as (str or list, null): route under these names instead (the JOIN's
            key, when this stream names its fields differently): each record goes on
            wrapped as ``{names..., "$record": record}``.

    Bad input: a record without a join field goes to the dead letters (it has no
    partition, so no JOIN could take it).
    """

    ports = (
        push_in("in", doc="the stream"),
        push_out("out", doc="to the JOIN"),
        query_in("state", doc="-> true once the stream has ended"),
    )
    params = (
        FIELDS,
        Param(
            "route_as",
            "any",
            None,
            doc="route under these field names (the JOIN's key) instead: the record is "
            "wrapped as {names..., '$record': record}",
        ),
    )
    plain_records = True

    @staticmethod
    def check_params(params: dict[str, Any]) -> list[ParamProblem]:
        if params.get("route_as") is None or params.get("key") is None:
            return []
        return pairing_problem(
            params,
            "key",
            "route_as",
            "in WindowJoin, right_key must name as many fields as key: the right stream's "
            "fields, one for each of key's",
            "paired field by field",
            ("key (in WindowJoin: right_key)", "route_as (in WindowJoin: key)"),
        )

    def on_start(self, params: dict[str, Any]) -> None:
        self.on = join_fields(_routing_key(params), "key")
        self.route_as = (
            None if params["route_as"] is None else join_fields(params["route_as"], "route_as")
        )
        if self.route_as is not None and len(self.route_as) != len(self.on):
            raise ParameterError("route_as needs as many field names as key", "route_as")
        self.ended = False
        self.reject = Rejects(self)

    @classmethod
    def instance_port(cls, port: Port, params: dict[str, Any]) -> Port:
        if port.name != "in":
            return port
        try:
            fields = join_fields(_routing_key(params), "key")
        except ParameterError:
            return port
        return replace(port, fields={f.split(".")[0]: "any" for f in fields})

    def on_batch(self, port: str, records: list[Record]) -> None:
        on, names = self.on, self.route_as
        if names is None and len(on) == 1:
            field = on[0]
            if all(type(r) is dict and field in r for r in records):
                self.emit_many(records)  # the usual case: every record has the field
                return
        good = []
        for record in records:
            value = key_value(record, on)
            if value is MISSING:
                self.reject(record, f"record has no join field {', '.join(on)}", port=port)
            elif names is None:
                good.append(record)
            else:
                values = (value,) if len(names) == 1 else value
                good.append({**dict(zip(names, values)), ROUTED: record})
        self.emit_many(good)

    def on_end(self, port: str) -> None:
        self.ended = True

    def on_query(self, port: str, request: Any) -> Any:
        return self.ended


def _routing_key(params: dict[str, Any]) -> Any:
    """PREJOIN's join fields: its ``key``, or without one the names it routes as."""
    return params.get("key") if params.get("key") is not None else params.get("route_as")


class PostJoin(Element):
    """POSTJOIN: receive the enriched stream from every JOIN member and pass it on.

    Ports:
        in (push in): from the JOIN members.
        out (push out): the enriched stream.

    Parameters:
        version_into (str, "dataset_version"): the field naming the dataset version
            (the records of each version are counted and logged at the end).

    Bad input: none; records pass unchanged.
    """

    ports = (push_in("in", doc="from the JOIN"), push_out("out", doc="the enriched stream"))
    params = (Param("version_into", "str", "dataset_version"),)
    plain_records = True

    def on_start(self, params: dict[str, Any]) -> None:
        self.field = params["version_into"]
        self.by_version: dict[Any, int] = {}

    def on_batch(self, port: str, records: list[Record]) -> None:
        counts, field = self.by_version, self.field
        for r in records:
            v = r.get(field) if isinstance(r, dict) else None
            counts[v] = counts.get(v, 0) + 1
        self.emit_many(records)

    def snapshot(self) -> Any:
        return self.by_version

    def restore(self, state: Any) -> None:
        self.by_version = state

    def on_finish(self) -> None:
        if any(v is not None for v in self.by_version):
            parts = ", ".join(
                f"version {v}: {n:,}" for v, n in sorted(self.by_version.items(), key=str)
            )
            self.log(f"enriched records by dataset version: {parts}")


# ---- JOIN --------------------------------------------------------------------------------


class Generation:
    """One dataset version's rows at a member: join value -> rows, indexed by partition."""

    __slots__ = ("index", "rows")

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        self.index = KeyIndex()

    def add(self, key: Any, row: dict[str, Any]) -> None:
        found = self.rows.get(key)
        if found is None:
            self.rows[key] = [row]
            self.index.add(key)
        else:
            found.append(row)


class JoinMember(Element):
    """JOIN: enrich each stream record with the matching rows of the newest complete dataset
    version (a keyed shard over the stream's join fields).

    Ports:
        in (push in): the stream, from PREJOIN.
        dataset (push in): tagged rows and end-of-version records, from ENRICHMENT.
        out (push out): the enriched stream, to POSTJOIN.

    Parameters:
        key (str or list, required): the stream's join field(s); the shard key.
        kind (str, "inner"): "inner" (a record without a match is dropped, and
            counted in the log) or "left" (it goes on with no match).
        many (str, "each"): with several matching rows, "each" emits one record
            per row, "list" one record with the list of rows.
        into (str, "match"): the field that receives the row (or the list).
        version_into (str, "dataset_version"): the field that says which dataset
            version enriched the record.

    Stream records that arrive before the first version is complete wait (in the
    member's state) until it is. A version becomes current at a member when its
    end record arrives, after all of that member's rows of it; from then on every
    record it enriches says that version, and older versions are dropped — except
    for stream records of partitions it has handed over while they were queued
    here: those are enriched from a copy of the rows (and the version) current at
    the hand-over, kept until the stream's marker arrives (``read_only_inputs``).

    Bad input: a stream record whose join field holds a list or a map (it can match
    no row), and stream records still waiting when the stream ends with no dataset
    version complete, go to the dead letters.
    """

    ports = (
        push_in("in", doc="the stream"),
        push_in("dataset", doc="tagged dataset rows"),
        push_out("out", doc="the enriched stream"),
    )
    params = (
        FIELDS,
        Param("kind", "str", "inner", choices=("inner", "left")),
        Param("many", "str", "each", choices=("each", "list")),
        Param("into", "str", "match", doc="field receiving the matching row(s)"),
        Param("version_into", "str", "dataset_version"),
    )
    state_key_param = "key"
    #: the stream only reads the dataset: a split does not wait for the records queued here
    read_only_inputs = frozenset({"in"})

    def on_start(self, params: dict[str, Any]) -> None:
        self.on = join_fields(params["key"], "key")
        self.left = params["kind"] == "left"
        self.each = params["many"] == "each"
        self.into = params["into"]
        self.version_into = params["version_into"]
        self.gens: dict[int, Generation] = {}
        self.current: int | None = None
        #: stream records that came before any version was complete
        self.waiting: list[Record] = []
        self.unmatched = 0
        self.reject = Rejects(self)
        #: partitions exported while stream records for them were still queued here:
        #: (partitions, the version then current, its rows of them), until released
        self.kept: list[tuple[frozenset[int], int, dict[Any, list[dict[str, Any]]]]] = []

    # ---- records ---------------------------------------------------------------------
    def on_batch(self, port: str, records: list[Record]) -> None:
        if port == "dataset":
            self._dataset(records)
        elif self.current is None:
            self.waiting.extend(records)
        else:
            if self.waiting:  # taken in with moved partitions: they came first
                waiting, self.waiting = self.waiting, []
                self._enrich(waiting)
            self._enrich(records)

    def _dataset(self, records: list[Record]) -> None:
        on = self.on
        for r in records:
            version = int(r["version"])
            if r.get("end"):
                self._complete(version)
                continue
            if self.current is not None and version <= self.current:
                continue  # a version already replaced (replayed after a restore)
            gen = self.gens.get(version)
            if gen is None:
                gen = self.gens[version] = Generation()
            gen.add(key_value(r, on), r["row"])

    def _complete(self, version: int, enrich: bool = True) -> None:
        if self.current is not None and version <= self.current:
            return
        self.current = version
        self.gens.setdefault(version, Generation())
        for old in [v for v in self.gens if v < version]:
            del self.gens[old]
        if self.waiting and enrich:
            waiting, self.waiting = self.waiting, []
            self._enrich(waiting)

    def _enrich(self, records: list[Record]) -> None:
        assert self.current is not None
        if self.kept:
            records = self._enrich_kept(records)
        self.emit_many(self._joined(records, self.gens[self.current].rows, self.current))

    def _enrich_kept(self, records: list[Record]) -> list[Record]:
        """Enrich the records of partitions exported early (queued here before the
        switch) from the rows kept for them; return the others."""
        rest: list[Record] = []
        out: list[Record] = []
        for r in records:
            key = key_value(r, self.on)
            p = partition_of(key) if key is not MISSING else -1
            for partitions, version, rows in self.kept:
                if p in partitions:
                    out.extend(self._joined([r], rows, version))
                    break
            else:
                rest.append(r)
        self.emit_many(out)
        return rest

    def _joined(
        self, records: list[Record], rows_of: dict[Any, list[dict[str, Any]]], version: int
    ) -> list[Record]:
        on, into, tag = self.on, self.into, self.version_into
        # one plain field (the usual case): read it directly
        field = on[0] if len(on) == 1 and "." not in on[0] else None
        left, each = self.left, self.each
        out: list[Record] = []
        append = out.append
        for r in records:
            value = r.get(field, MISSING) if field is not None else key_value(r, on)
            try:
                rows = rows_of.get(value)
            except TypeError:  # a list or a map: no key (free until raised)
                self.reject(r, unjoinable(value, on) or JOIN_VALUES, port="in")
                continue
            if not rows:
                if left:
                    append({**r, into: None if each else [], tag: version})
                else:
                    self.unmatched += 1
            elif not each:
                append({**r, into: list(rows), tag: version})
            elif len(rows) == 1:
                append({**r, into: rows[0], tag: version})
            else:
                for row in rows:
                    append({**r, into: row, tag: version})
        return out

    def on_finish(self) -> None:
        if self.waiting and self.current is not None:
            waiting, self.waiting = self.waiting, []
            self._enrich(waiting)
        if self.waiting:
            # the stream ended before any dataset version was complete
            for r in self.waiting:
                self.dead_letter(r, "no dataset version was complete when the stream ended")
            self.waiting = []
        if self.unmatched:
            self.log(f"{self.unmatched:,} record(s) matched no dataset row (inner join)")

    # ---- state -----------------------------------------------------------------------
    def snapshot(self) -> Any:
        return {
            "current": self.current,
            "gens": {v: g.rows for v, g in self.gens.items()},
            "waiting": self.waiting,
            "unmatched": self.unmatched,
        }

    def restore(self, state: Any) -> None:
        self.current = state["current"]
        self.gens = {}
        for v, rows in state["gens"].items():
            gen = self.gens[v] = Generation()
            gen.rows = rows
            gen.index = KeyIndex(rows)
        self.waiting = state["waiting"]
        self.unmatched = state["unmatched"]

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        on = self.on
        moving = [r for r in self.waiting if partition_of(key_value(r, on)) in partitions]
        if moving:
            self.waiting = [
                r for r in self.waiting if partition_of(key_value(r, on)) not in partitions
            ]
        gens = {v: g.index.take(g.rows, partitions) for v, g in self.gens.items()}
        if self.current is not None:
            # stream records of these partitions may still be queued here: they are
            # enriched from the current version's rows until release_partitions
            kept: dict[Any, list[dict[str, Any]]] = {}
            for entries in gens.get(self.current, {}).values():
                kept.update(entries)
            self.kept.append((partitions, self.current, kept))
        return {
            "current": self.current,
            "gens": gens,
            "waiting": moving,
            "partitions": sorted(partitions),
        }

    def export_early(self) -> bool:
        # before any version is complete, queued records would wait here for rows
        # that now go to the new owner
        return self.current is not None

    def release_partitions(self, partitions: frozenset[int]) -> None:
        # releases come in the order of the exports: drop the oldest copy they cover
        for i, (kept, _, _) in enumerate(self.kept):
            if kept <= partitions:
                del self.kept[i]
                return

    def import_partitions(self, state: Any) -> None:
        back = set(state["partitions"])
        if back and self.kept:  # partitions coming back: served from their state again
            self.kept = [(ps - back, v, rows) for ps, v, rows in self.kept if ps - back]
        for v, parts in state["gens"].items():
            gen = self.gens.get(v)
            if gen is None:
                gen = self.gens[v] = Generation()
            gen.index.put(gen.rows, parts)
        self.waiting.extend(state["waiting"])
        current = state["current"]
        if current is not None:
            # what waited here is enriched with the next stream records, before them
            self._complete(current, enrich=False)

    def member_cost(self) -> int | None:
        held = sum(len(g.rows) for g in self.gens.values())
        return min(5, held // 100_000)
