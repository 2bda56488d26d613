"""Declared ports and parameters of element classes, and their validation.

Declarations are plain data so a topology can be checked without running anything.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from datablox.errors import ParameterError

PortKind = Literal["push", "query"]
Direction = Literal["in", "out"]

#: Field and parameter type names understood by the checker. ``path`` is a string naming
#: a file or folder (or a glob); a relative one is resolved against the .topo file's folder.
TYPE_NAMES = ("any", "str", "path", "int", "float", "number", "bool", "list", "map", "null")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marker default for a parameter that must be given.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Port:
    """A named endpoint of an element.

    ``fields`` maps record field names to type names (see :data:`TYPE_NAMES`).
    On an out-port they are the fields every emitted record carries; on an
    in-port they are the fields the element needs. ``None`` means undeclared.
    """

    name: str
    kind: PortKind
    direction: Direction
    fields: Mapping[str, str] | None = None
    doc: str = ""
    #: Parameter values under which the element uses the port at all (None: always);
    #: ``check`` does not warn that the port is unconnected under other values.
    when: Mapping[str, Any] | None = None

    def used_with(self, params: Mapping[str, Any]) -> bool:
        """Whether the element uses this port with these parameters (defaults filled in)."""
        return self.when is None or all(params.get(k) == v for k, v in self.when.items())

    def describe(self) -> str:
        arrow = {"push": "->", "query": "?>"}[self.kind]
        fields = ""
        if self.fields:
            fields = " {" + ", ".join(f"{k}: {v}" for k, v in self.fields.items()) + "}"
        return f"{self.direction} {self.kind} ({arrow}) {self.name}{fields}"


def push_in(name: str = "in", fields: Mapping[str, str] | None = None, doc: str = "") -> Port:
    """An input port receiving pushed batches of records."""
    return Port(name, "push", "in", fields, doc)


def push_out(name: str = "out", fields: Mapping[str, str] | None = None, doc: str = "") -> Port:
    """An output port pushing records downstream."""
    return Port(name, "push", "out", fields, doc)


def query_in(name: str, fields: Mapping[str, str] | None = None, doc: str = "") -> Port:
    """A port that answers queries (the right-hand side of ``?>``)."""
    return Port(name, "query", "in", fields, doc)


def query_out(
    name: str,
    fields: Mapping[str, str] | None = None,
    doc: str = "",
    when: Mapping[str, Any] | None = None,
) -> Port:
    """A port that asks queries (the left-hand side of ``?>``); ``when``: see :class:`Port`."""
    return Port(name, "query", "out", fields, doc, when)


@dataclass(frozen=True)
class Param:
    """A parameter of an element class: a name, a type name and a default."""

    name: str
    type: str = "any"
    default: Any = REQUIRED
    doc: str = ""
    choices: Sequence[Any] | None = field(default=None)
    #: the smallest number allowed (numbers only; None: no bound)
    least: float | None = None
    #: numbers must be more than this (None: no bound)
    above: float | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def is_path(self) -> bool:
        """Whether a string value names a file or folder (type ``path`` or ``path|null``)."""
        return "path" in (t.strip() for t in self.type.split("|"))


@dataclass(frozen=True)
class ParamProblem:
    """What an element class's ``check_params`` hook found wrong with one parameter.

    ``where`` is a key inside a map value (e.g. the field of Map's ``set``), or
    None for the value itself; ``column`` is the 1-based column inside that
    string value where the fault is, when known.
    """

    param: str
    message: str
    hint: str | None = None
    where: str | None = None
    column: int | None = None


def declaration_problem(spec: Param) -> str | None:
    """Why a ``Param`` declaration is malformed (an unknown type name), or None."""
    if not isinstance(spec, Param):
        return f"{spec!r} is not a Param"
    if not isinstance(spec.type, str):
        return f"Param({spec.name!r}, {spec.type!r}): the type is not a string"
    unknown = [t.strip() for t in spec.type.split("|") if t.strip() not in TYPE_NAMES]
    if unknown:
        return f"Param({spec.name!r}, {spec.type!r}): unknown type name '{unknown[0]}'"
    return None


def type_name_of(value: Any) -> str:
    """The .topo type name of a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def value_matches(type_spec: str, value: Any) -> bool:
    """Whether ``value`` is acceptable for a type spec such as ``"int"`` or ``"str|null"``."""
    actual = type_name_of(value)
    for want in type_spec.split("|"):
        want = want.strip()
        if want in ("any", actual) or (want == "path" and actual == "str"):
            return True
        if want in ("float", "number") and actual == "int":
            return True
        if want == "number" and actual == "float":
            return True
    return False


def types_compatible(produced: str, needed: str) -> bool:
    """Whether a field produced as ``produced`` satisfies a need for ``needed``."""
    wants = {w.strip() for w in needed.split("|")}
    if "any" in wants:
        return True
    for got in (g.strip() for g in produced.split("|")):
        if got == "any":
            continue
        if got in wants or (got == "path" and "str" in wants):
            continue
        if got == "int" and wants & {"float", "number"}:
            continue
        if got == "float" and "number" in wants:
            continue
        return False
    return True


def suggest(name: str, candidates: Sequence[str]) -> str | None:
    """A 'did you mean' candidate close to ``name``, if any."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _out_of_bounds(spec: Param, value: Any) -> str | None:
    """The bound a value breaks ("at least 0", "more than 0", a path's), or None."""
    if value == "" and spec.is_path:
        return "a file or folder name, not empty"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if spec.least is not None and not value >= spec.least:
        return f"at least {spec.least:g}"
    if spec.above is not None and not value > spec.above:
        return f"more than {spec.above:g}"
    return None


def validate_params(
    class_name: str, declared: Sequence[Param], given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[ParameterError]]:
    """Check ``given`` against ``declared``; return (values with defaults, errors).

    Pure: used by the .topo checker (which attaches source spans) and by the
    element runtime just before ``on_start``.
    """
    errors: list[ParameterError] = []
    by_name = {p.name: p for p in declared}
    values: dict[str, Any] = {}
    for key, value in given.items():
        spec = by_name.get(key)
        if spec is None:
            near = suggest(key, list(by_name))
            known = ", ".join(by_name) or "none"
            hint = f"did you mean '{near}'?" if near else f"{class_name} takes: {known}"
            errors.append(ParameterError(f"{class_name} has no parameter '{key}'", key, hint))
            continue
        if not value_matches(spec.type, value):
            errors.append(
                ParameterError(
                    f"parameter '{key}' of {class_name} must be {spec.type}, "
                    f"got {type_name_of(value)} {value!r}",
                    key,
                    spec.doc or None,
                )
            )
            continue
        if spec.choices is not None and value not in spec.choices:
            options = ", ".join(repr(c) for c in spec.choices)
            errors.append(
                ParameterError(
                    f"parameter '{key}' of {class_name} must be one of {options}, got {value!r}",
                    key,
                )
            )
            continue
        bound = _out_of_bounds(spec, value)
        if bound is not None:
            errors.append(
                ParameterError(
                    f"parameter '{key}' of {class_name} must be {bound}, got {value!r}",
                    key,
                    spec.doc or None,
                )
            )
            continue
        values[key] = value
    for spec in declared:
        if spec.name in values or spec.name in given:
            continue
        if spec.required:
            errors.append(
                ParameterError(
                    f"{class_name} needs parameter '{spec.name}' ({spec.type})",
                    spec.name,
                    spec.doc or None,
                )
            )
        else:
            values[spec.name] = spec.default
    return values, errors
