"""The flat topology every front end produces and the checker reads, plus its span table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datablox.dsl.diagnostics import Location


@dataclass
class Endpoint:
    """One end of a connection or feed.

    ``port`` is None when the source named only the element; the checker then
    picks the element's only port of the right kind and direction. For a group
    instance named without a port, ``choices`` lists its exposed ports as
    ``(exposed name, element, port)``.
    """

    element: str
    port: str | None
    choices: list[tuple[str, str, str]] | None = None

    def __str__(self) -> str:
        return f"{self.element}.{self.port}" if self.port else self.element


@dataclass
class Element:
    name: str
    cls: str
    params: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    #: ``{"min": .., "max": ..}`` as written; the checker verifies the values.
    shard: dict[str, Any] | None = None
    #: Parameters (and ``shard.min``/``shard.max``) whose value was already reported
    #: as wrong; the checker does not report them again as missing.
    unchecked: set[str] = field(default_factory=set)


@dataclass
class Connection:
    kind: str
    src: Endpoint
    dst: Endpoint


@dataclass
class Feed:
    name: str
    target: Endpoint


@dataclass
class Topology:
    name: str
    search_path: list[str] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    feeds: list[Feed] = field(default_factory=list)
    fuse: list[list[str]] = field(default_factory=list)


class Spans(dict[tuple[Any, ...], Location]):
    """Where each part of the IR was written, keyed by position.

    Keys: ``("element", i)`` name, ``("class", i)``, ``("arg", i, param)`` and
    ``("value", i, param)``, ``("value", i, param, key)`` (an entry of a map value),
    ``("node", i)``, ``("shard", i)``, ``("shard.min", i)``,
    ``("shard.max", i)``, ``("conn", c)``, ``("from", c)``/``("to", c)`` (the
    port, or the element when no port was written), ``("feed", f)``,
    ``("feed.target", f)``, ``("fuse", g, j)``.
    """

    def at(self, *keys: tuple[Any, ...]) -> Location | None:
        """The location of the first key present."""
        for key in keys:
            loc = self.get(key)
            if loc is not None:
                return loc
        return None
