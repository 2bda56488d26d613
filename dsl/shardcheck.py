"""Checking shard(min=, max=, key=) against the class: whether it can be a pool or a keyed shard."""

from __future__ import annotations

from typing import Any

from datablox.dsl import ir
from datablox.dsl.diagnostics import Diagnostic, error
from datablox.element import Element


def shard_traits(cls: type[Element]) -> dict[str, Any]:
    """What a class says about being sharded (a checker's stand-in class carries it as read
    in the child that imported the real class)."""
    found = getattr(cls, "shard_traits_", None)
    if found is not None:
        return dict(found)
    return {
        "has_state": cls.has_state(),
        "keyable": cls.keyable(),
        "state_key_param": cls.state_key_param,
        "min_members": cls.min_members,
    }


def key_paths(value: Any) -> list[str] | None:
    """The key fields of ``key=``: a path or a list of paths (None: not that shape)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(v, str) and v and all(v.split(".")) for v in value):
        return None
    return list(value)


def class_problems(i: int, el: ir.Element, cls: type[Element], spans: ir.Spans) -> list[Diagnostic]:
    """Problems of a shard of this class: no input to spread, state a pool would split,
    state that cannot move between members, a key other than the one the state is kept by."""
    shard = el.shard
    if shard is None or "shard.key" in el.unchecked:
        return []
    name = cls.__name__
    where = spans.at(("shard", i))
    key_at = spans.at(("shard.key", i), ("shard", i))
    if not any(p.kind == "push" and p.direction == "in" for p in cls.ports):
        return [
            error(
                f"'{el.name}' ({name}) cannot be a shard: it has no push in-port to spread "
                "over members",
                where,
                "shard the element that receives its records instead",
            )
        ]
    traits = shard_traits(cls)
    diags: list[Diagnostic] = []
    key = shard.get("key")
    if key is None and traits["has_state"]:
        hint = (
            f'give the shard a key: shard(min=1, max={shard.get("max")}, key="field")'
            if traits["keyable"]
            else f"{name} cannot move its state between members; drop shard(...)"
        )
        diags.append(
            error(
                f"'{el.name}' ({name}) keeps state, so a pool (a shard without key) would split "
                "it arbitrarily between members",
                where,
                hint,
            )
        )
    elif key is not None and not traits["keyable"]:
        diags.append(
            error(
                f"'{el.name}' ({name}) keeps state it cannot move between members: the class "
                "defines snapshot() but not export_partitions()/import_partitions()",
                key_at,
                "define both hooks (docs/shards.md), or drop shard(...)",
            )
        )
    param = traits["state_key_param"]
    if key is not None and param is not None and "shard.key" not in el.unchecked:
        own = el.params.get(param)
        if own is None:
            own = next((p.default for p in cls.params if p.name == param), None)
        if isinstance(own, str) and key != [own]:
            diags.append(
                error(
                    f"{name} keeps its state by field '{own}' (parameter {param}); its keyed "
                    f"shard must route on that field, not {', '.join(key)}",
                    key_at,
                    f'write key="{own}"',
                )
            )
    least = int(traits["min_members"])
    high = shard.get("max")
    if isinstance(high, int) and high < least:
        diags.append(
            error(
                f"{name} needs at least {least} members as a shard; shard max is {high}",
                spans.at(("shard.max", i), ("shard", i)),
                f"write shard(min={least}, max={max(least, 2 * least)})",
            )
        )
    return diags
