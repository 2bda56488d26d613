"""Helpers for .topo values: references, conversion to Python, did-you-mean hints."""

from __future__ import annotations

from typing import Any

from datablox.dsl import ast
from datablox.ports import suggest


def did_you_mean(name: str, candidates: list[str], listing: str) -> str:
    """A did-you-mean hint, or the list of names when none is close."""
    near = suggest(name, candidates)
    if near:
        return f"did you mean '{near}'?"
    return f"{listing}: {', '.join(candidates)}" if candidates else f"{listing}: none"


def find_ref(value: ast.Value) -> ast.Ref | None:
    """The first group-parameter reference inside ``value``, if any."""
    if isinstance(value, ast.Ref):
        return value
    if isinstance(value, ast.ListV):
        items = value.items
    elif isinstance(value, ast.MapV):
        items = [v for _, v in value.items]
    else:
        return None
    for item in items:
        found = find_ref(item)
        if found:
            return found
    return None


def to_python(value: ast.Value) -> Any:
    """The plain Python value of a substituted (reference-free) value."""
    if isinstance(value, ast.ListV):
        return [to_python(v) for v in value.items]
    if isinstance(value, ast.MapV):
        return {k: to_python(v) for k, v in value.items}
    assert isinstance(value, ast.Lit)
    return value.value
