"""Element classes used by the dsl tests: only declarations, nothing runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datablox.element import Element, Source
from datablox.ports import REQUIRED, Param, push_in, push_out, query_in, query_out


class Declared(Element):
    """Hooks for the in-ports below, which the checker requires; never called here."""

    def on_record(self, port: str, record: Any) -> None:
        raise NotImplementedError

    def on_query(self, port: str, request: Any) -> Any:
        raise NotImplementedError


class Generating(Source):
    """The generator every source needs, which the checker requires; never called here."""

    def generate(self) -> Iterator[Any]:
        raise NotImplementedError


class Gen(Generating):
    """A source with parameters of every type."""

    ports = (push_out("out", {"x": "int", "name": "str"}),)
    params = (
        Param("count", "int", REQUIRED),
        Param("rate", "float|null", None),
        Param("flag", "bool", False),
        Param("ratio", "number", 0.0),
        Param("tags", "list", []),
        Param("opts", "map", {}),
    )


class Src(Generating):
    """A source of records with an int field x."""

    ports = (push_out("out", {"x": "int", "name": "str"}),)
    params = (Param("count", "int", 10),)


class Filt(Declared):
    """A transform with one push in and one push out."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("where", "str", REQUIRED), Param("limit", "int", 0))


class Thing(Declared):
    """A transform taking any parameter x."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("x", "any", None),)


class Sink(Declared):
    """A sink needing field x, answering queries on lookup."""

    ports = (push_in("in", {"x": "int"}), query_in("lookup"))
    params = (Param("path", "str", "out.jsonl"),)


class StrSink(Declared):
    """A sink needing fields the sources do not produce as it wants."""

    ports = (push_in("in", {"x": "str", "y": "float"}),)


class Probe(Element):
    """Asks queries; has no push ports."""

    ports = (query_out("ask"),)
    params = (Param("every", "int", 1),)


class Split(Declared):
    """Two push out-ports, so a bare name on the left is ambiguous."""

    ports = (push_in("in"), push_out("a"), push_out("b"))
