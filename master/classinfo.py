"""What the master asks of the element classes a topology names, before it plans."""

from __future__ import annotations

from typing import Any

from datablox.registry import add_search_path, resolve


def _declared(tradecraft: dict[str, Any], attr: str, default: Any) -> dict[str, Any]:
    """Each element's class attribute ``attr``, with the topology's own folders importable."""
    for folder in tradecraft.get("search_path", []):
        add_search_path(folder)
    return {e["name"]: getattr(resolve(e["class"]), attr, default) for e in tradecraft["elements"]}


def min_members(tradecraft: dict[str, Any]) -> dict[str, int]:
    """The fewest members each sharded element's class works with."""
    shards = {e["name"] for e in tradecraft["elements"] if e.get("shard")}
    found = _declared(tradecraft, "min_members", 1)
    return {name: int(n) for name, n in found.items() if name in shards}


def cheap_classes(tradecraft: dict[str, Any]) -> dict[str, bool]:
    """Which elements are declared cheap by their class (for automatic fusion)."""
    return {name: bool(v) for name, v in _declared(tradecraft, "cheap", False).items()}
