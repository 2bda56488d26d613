"""Command-line overrides ``element.param=value``, applied to the IR before checking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datablox.dsl import ir
from datablox.dsl.diagnostics import Diagnostic, JsonPath, error
from datablox.dsl.parser import parse_value
from datablox.dsl.values import find_ref, to_python
from datablox.ports import suggest

ORIGIN = "override"


def parse_override(text: str) -> tuple[str, str, Any] | None:
    """Split ``element.param=value``; None if ``text`` does not have that shape.

    Element names may contain '/' and '.' is only taken as the separator at its
    last occurrence before the first '=' (values may contain '.' and '=').
    """
    left, eq, raw = text.partition("=")
    element, dot, param = left.strip().rpartition(".")
    if not eq or not dot or not element or not param:
        return None
    return element, param, literal(raw.strip())


def literal(raw: str) -> Any:
    """A .topo literal (number, bool, null, quoted string, list, map), else the plain string."""
    value, diags = _literal(raw, 1, 1)
    return raw if diags else value


def _literal(raw: str, line: int, col: int) -> tuple[Any, list[Diagnostic]]:
    """The value of ``raw`` written at ``override:line:col``, and why it cannot be used."""
    value, diags = parse_value(raw, ORIGIN, line, col)
    if diags:
        return None, diags
    if value is None or find_ref(value) is not None:
        return raw, []
    return to_python(value), []


def sources(overrides: Sequence[str]) -> dict[str, str]:
    """The overrides as one source text, one per line, so errors can show a caret."""
    if not overrides:
        return {}
    return {ORIGIN: "\n".join(" ".join(text.splitlines()) for text in overrides)}


def apply_overrides(
    topo: ir.Topology, spans: ir.Spans, overrides: Sequence[str]
) -> list[Diagnostic]:
    """Set parameters in place; the checker then checks them like written ones."""
    diags: list[Diagnostic] = []
    index = {el.name: i for i, el in enumerate(topo.elements)}
    for line, text in enumerate(overrides, 1):
        loc = JsonPath(ORIGIN, text)
        text = " ".join(text.splitlines())
        parsed = parse_override(text)
        if parsed is None:
            diags.append(
                error(
                    f"override '{text}' is not of the form element.param=value",
                    loc,
                    "for example: src.count=10 or g/f.where='x > 1'",
                )
            )
            continue
        element, param, _ = parsed
        left, _, raw = text.partition("=")
        col = len(left) + 2 + len(raw) - len(raw.lstrip())
        value, bad = _literal(raw.strip(), line, col)
        i = index.get(element)
        if i is None:
            near = suggest(element, list(index))
            hint = f"did you mean '{near}'?" if near else f"elements: {', '.join(index)}"
            diags.append(error(f"override names unknown element '{element}'", loc, hint))
            continue
        if bad:
            diags.extend(bad)
            topo.elements[i].params.pop(param, None)
            topo.elements[i].unchecked.add(param)
            continue
        topo.elements[i].params[param] = value
        spans[("arg", i, param)] = loc
        spans[("value", i, param)] = loc
    return diags
