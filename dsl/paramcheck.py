"""Checking element parameters: declared types, values the codec can carry, hooks, paths."""

from __future__ import annotations

import dataclasses
import os

from datablox.dsl import ir
from datablox.dsl.diagnostics import Diagnostic, Location, Span, error
from datablox.dsl.limits import value_problem
from datablox.element import Element
from datablox.errors import ParameterError
from datablox.ports import ParamProblem, type_name_of, validate_params


def uncarried(topo: ir.Topology, spans: ir.Spans) -> tuple[list[Diagnostic], ir.Topology]:
    """Errors for parameter values no record or parameter can carry, and ``topo`` without them.

    The front ends report these with better positions; this catches the IR built
    by other means, before anything recurses into a value.
    """
    diags: list[Diagnostic] = []
    elements = []
    for i, el in enumerate(topo.elements):
        bad = {}
        for name, value in el.params.items():
            found = value_problem(value)
            if found is not None:
                message, hint, inside = found
                where = f" (at {name}{inside})" if inside else ""
                bad[name] = error(
                    f"parameter '{name}' of element '{el.name}': {message}{where}",
                    spans.at(("value", i, name), ("class", i)),
                    hint,
                )
        if bad:
            diags.extend(bad.values())
            params = {k: v for k, v in el.params.items() if k not in bad}
            el = dataclasses.replace(el, params=params, unchecked=el.unchecked | set(bad))
        elements.append(el)
    if not diags:
        return [], topo
    return diags, dataclasses.replace(topo, elements=elements)


def param_problems(el: ir.Element, cls: type[Element]) -> list[ParameterError]:
    """Parameters that are unknown, missing or of the wrong type."""
    return validate_params(el.cls, cls.params, el.params)[1]


def param_location(
    spans: ir.Spans, i: int, el: ir.Element, cls: type[Element], problem: ParameterError
) -> Location | None:
    """Where a parameter problem points: the name if unknown, the value if wrong, else the class."""
    name = problem.param
    if name in el.params and name not in {p.name for p in cls.params}:
        return spans.at(("arg", i, name), ("class", i))
    if name in el.params:
        return spans.at(("value", i, name), ("class", i))
    return spans.at(("class", i))


def hook_location(spans: ir.Spans, i: int, el: ir.Element, found: ParamProblem) -> Location | None:
    """Where a ``check_params`` finding points: the value, narrowed to its column if possible."""
    keys: list[tuple[object, ...]] = []
    value = el.params.get(found.param)
    if found.where is not None:
        keys.append(("value", i, found.param, found.where))
        value = value.get(found.where) if isinstance(value, dict) else None
    keys += [("value", i, found.param), ("class", i)]
    loc = spans.at(*keys)
    if (
        isinstance(loc, Span)
        and found.column is not None
        and isinstance(value, str)
        # a string written without escapes: columns inside it map one to one
        and loc.end_col - loc.col == len(value) + 2
        and 1 <= found.column <= len(value) + 1
    ):
        col = loc.col + found.column
        return Span(loc.file, loc.line, col, col + 1)
    return loc


def resolve_paths(el: ir.Element, cls: type[Element], base: str) -> None:
    """Make relative values of ``path`` parameters absolute against ``base`` (in place)."""
    for spec in cls.params:
        value = el.params.get(spec.name)
        if spec.is_path and isinstance(value, str) and value and not _absolute(value):
            el.params[spec.name] = os.path.join(base, value)


def _absolute(path: str) -> bool:
    return os.path.isabs(path) or path.startswith("~")


def shard_problems(i: int, el: ir.Element, spans: ir.Spans) -> list[Diagnostic]:
    """Problems in ``shard(min=.., max=..)``: bounds that are not integers or not a range."""
    diags: list[Diagnostic] = []
    if el.shard is None:
        return diags
    ok = True
    for key in ("min", "max"):
        value = el.shard.get(key)
        if f"shard.{key}" in el.unchecked:
            ok = False
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            ok = False
            diags.append(
                error(
                    f"shard {key} must be an integer, got {type_name_of(value)} {value!r}",
                    spans.at((f"shard.{key}", i), ("shard", i)),
                )
            )
    if ok and not 1 <= el.shard["min"] <= el.shard["max"]:
        low, high = el.shard["min"], el.shard["max"]
        # at the bound at fault: the user's own value when a group passed it on
        culprit = "shard.min" if low < 1 else "shard.max"
        diags.append(
            error(
                f"shard(min={low}, max={high}) is not a range: need 1 <= min <= max",
                spans.at((culprit, i), ("shard", i)),
                "a shard has at least one member",
            )
        )
    return diags
