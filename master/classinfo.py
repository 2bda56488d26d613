"""What the master asks of the element classes a topology names, before it plans."""

from __future__ import annotations

from typing import Any

from datablox.registry import add_search_path, resolve


def _class(tradecraft: dict[str, Any], ref: str) -> type:
    """The class ``ref`` names, with the topology's own folders importable."""
    for folder in tradecraft.get("search_path", []):
        add_search_path(folder)
    return resolve(ref)


def min_members(tradecraft: dict[str, Any]) -> dict[str, int]:
    """The fewest members each sharded element's class works with."""
    return {
        e["name"]: int(getattr(_class(tradecraft, e["class"]), "min_members", 1))
        for e in tradecraft["elements"]
        if e.get("shard")
    }


def cheap_classes(tradecraft: dict[str, Any]) -> dict[str, bool]:
    """Which elements are declared cheap by their class (for automatic fusion)."""
    return {
        e["name"]: bool(getattr(_class(tradecraft, e["class"]), "cheap", False))
        for e in tradecraft["elements"]
    }
