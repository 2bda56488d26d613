"""Small helpers for the words of the master's messages."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number: "1 element", "3 elements", "2 times"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
