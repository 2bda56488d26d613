"""Limits a topology keeps: what a value may hold, and how many elements share a process.

A parameter value holds 64-bit integers and finite floats, nested at most 100
levels; a process holds at most 40 fused elements.
"""

from __future__ import annotations

import math
from typing import Any

#: Lists and maps inside a parameter value may nest this deep, no deeper. Well below
#: Python's recursion limit, so every later step (checking, copying, encoding) is safe.
MAX_DEPTH = 100
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

#: The most elements fusion puts into one process: a fused chain hands each batch on by
#: direct calls, about ten Python frames per element, and Python's stack stops at 1,000
#: (the planner runs a longer chain as several processes; an explicit fuse is refused).
MAX_FUSED_CHAIN = 40

CARRY_HINT = "records and parameters carry 64-bit integers and finite floats only"
DEPTH_HINT = f"lists and maps may nest at most {MAX_DEPTH} levels deep"


def number_problem(value: Any, written: str | None = None) -> str | None:
    """Why ``value`` (an int or float, ``written`` so) cannot be carried, or None when it can."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:37]}..."
        return f"integer {shown} cannot be carried: it is outside the signed 64-bit range"
    if isinstance(value, float) and not math.isfinite(value):
        shown = f"{written} (= {value})" if written and written != str(value) else str(value)
        return f"number {shown} cannot be carried: it is not finite"
    return None


def too_deep() -> str:
    return f"value nested more than {MAX_DEPTH} levels deep"


def value_problem(value: Any, depth: int = 0) -> tuple[str, str, str] | None:
    """(message, hint, path inside the value) of the first part that cannot be carried.

    None when all of it can. Recursion stops at :data:`MAX_DEPTH`, so any value,
    however deep, is safe to check.
    """
    if isinstance(value, (list, tuple, dict)):
        if depth >= MAX_DEPTH:
            return too_deep(), DEPTH_HINT, ""
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            found = value_problem(item, depth + 1)
            if found is not None:
                return found[0], found[1], f"[{key}]" + found[2]
        return None
    problem = number_problem(value)
    return (problem, CARRY_HINT, "") if problem else None


def bracket_overflow(text: str, limit: int) -> tuple[int, int] | None:
    """(line, column) of the first '[' or '{' that opens more than ``limit`` levels.

    Skips strings ('...' and "...", with backslash escapes) and '#' comments, so it
    can guard a parser that would otherwise recurse once per level.
    """
    depth = 0
    line, col = 1, 0
    quote = ""
    comment = False
    escaped = False
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
            quote, comment, escaped = "", False, False  # strings never span lines
            continue
        if comment:
            continue
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{(":
            depth += 1
            if depth > limit:
                return line, col
        elif ch in "]})":
            depth = max(0, depth - 1)
    return None
