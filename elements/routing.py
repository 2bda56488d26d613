"""Routing elements: Director (by partition key) and Manager (by time window)."""

from __future__ import annotations

import math
from typing import Any

from datablox.element import MISSING, Element, Record
from datablox.element import field_value as _field
from datablox.elements._support import Rejects
from datablox.partition import owner_of, partition_of
from datablox.ports import Param, push_in, push_out

__all__ = ["Director", "Manager"]


class Director(Element):
    """Route each record to one connection of ``out``, chosen by its partition key.

    Ports:
        in (push in): records with the ``key`` field.
        out (push out): connect it several times; each record goes to exactly
            one connection.

    Parameters:
        key (str, required): the field to route on (a dotted path reaches into
            nested maps).

    Routing: the key is hashed (crc32, stable across processes) into one of
    256 partitions, and the partitions are split into contiguous ranges, one
    per connection — so equal keys always meet at the same connection, and the
    layout matches the shards' own partitioning. A null key is a key like any
    other.

    Bad input: a record without the key field goes to the dead letters.
    """

    plain_records = True  # builds records from plain values, or passes them on
    ports = (push_in("in"), push_out("out"))
    params = (Param("key", "str", doc="field to partition on"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.key: str = params["key"]
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        owners = self.connections()
        if owners == 0:
            return
        key, emit_to = self.key, self.emit_to
        for record in records:
            value = _field(record, key)
            if value is MISSING:
                self.reject(record, f"record has no key field '{key}'", port=port)
                continue
            emit_to(owner_of(partition_of(value), owners), record)


class Manager(Element):
    """Route each record to one connection of ``out`` by the time window it falls in.

    Ports:
        in (push in): records with a numeric time field ``key`` (seconds).
        out (push out): connect it several times; windows go round-robin over
            the connections, so all records of one window meet at one connection.

    Parameters:
        key (str, required): the time field, in seconds (int or float; a dotted
            path reaches into nested maps).
        window (number, required): the window length in seconds (> 0).

    Routing: connection = ``int(record[key] // window) % connections``.

    Bad input: a record whose time field is missing, not a number (bools and
    strings included) or not finite goes to the dead letters. A ``window``
    that is not positive stops the element at start.
    """

    plain_records = True  # builds records from plain values, or passes them on
    ports = (push_in("in"), push_out("out"))
    params = (
        Param("key", "str", doc="time field, numeric seconds"),
        Param("window", "number", doc="window length in seconds", above=0),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.key: str = params["key"]
        self.window: float = params["window"]
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        owners = self.connections()
        if owners == 0:
            return
        key, window, emit_to = self.key, self.window, self.emit_to
        for record in records:
            value = _field(record, key)
            if value is MISSING:
                self.reject(record, f"record has no time field '{key}'", port=port)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                self.reject(
                    record,
                    f"time field '{key}' must be a number of seconds, got {value!r}",
                    port=port,
                )
            elif not math.isfinite(value):
                self.reject(record, f"time field '{key}' is not finite: {value!r}", port=port)
            else:
                emit_to(int(value // window) % owners, record)
