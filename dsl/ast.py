"""Syntax tree of a .topo file; every node keeps the span it was written at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datablox.dsl.diagnostics import Span


@dataclass
class Lit:
    """A scalar literal: string, int, float, bool or null."""

    value: Any
    span: Span


@dataclass
class ListV:
    items: list[Value]
    span: Span
    #: Levels of lists and maps, this one included (see dsl.limits.MAX_DEPTH).
    depth: int = 1


@dataclass
class MapV:
    items: list[tuple[str, Value]]
    span: Span
    #: Levels of lists and maps, this one included (see dsl.limits.MAX_DEPTH).
    depth: int = 1


@dataclass
class Ref:
    """A bare identifier in a value: a reference to a group parameter."""

    name: str
    span: Span


Value = Lit | ListV | MapV | Ref


@dataclass
class Name:
    """An identifier and where it was written."""

    text: str
    span: Span


@dataclass
class Arg:
    """``name=value`` in a call."""

    name: Name
    value: Value


@dataclass
class ElementStmt:
    """``element NAME = Class(args) [on NODE] [shard(min=.., max=..)]``."""

    name: Name
    class_ref: Name
    args: list[Arg]
    node: Name | None = None
    shard: list[Arg] | None = None
    shard_span: Span | None = None


@dataclass
class Endpoint:
    """``element`` or ``element.port``."""

    element: Name
    port: Name | None
    span: Span


@dataclass
class ConnectStmt:
    """A chain ``a -> b ?> c``: ``ops[i]`` joins ``endpoints[i]`` and ``endpoints[i+1]``."""

    endpoints: list[Endpoint]
    ops: list[Name]


@dataclass
class ExposeStmt:
    name: Name
    target: Endpoint


@dataclass
class FeedStmt:
    name: Name
    target: Endpoint


@dataclass
class FuseStmt:
    members: list[Name]
    span: Span


Stmt = ElementStmt | ConnectStmt | ExposeStmt | FeedStmt | FuseStmt


@dataclass
class GroupParam:
    name: Name
    default: Value | None


@dataclass
class GroupDef:
    name: Name
    params: list[GroupParam]
    body: list[Stmt]


@dataclass
class TopologyDef:
    name: Name
    body: list[Stmt]


@dataclass
class Import:
    path: str
    span: Span


@dataclass
class Module:
    """One parsed file."""

    file: str
    imports: list[Import] = field(default_factory=list)
    groups: list[GroupDef] = field(default_factory=list)
    topologies: list[TopologyDef] = field(default_factory=list)
