"""What an element class declares, checked before a topology uses it (pure)."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from datablox.element import Element, Source
from datablox.ports import Param, Port, declaration_problem, value_matches

#: A port name a .topo file can spell (``element.port``).
PORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Words of the .topo language, which cannot name a port.
RESERVED = frozenset(
    [
        "import",
        "group",
        "topology",
        "element",
        "expose",
        "feed",
        "fuse",
        "on",
        "shard",
        "true",
        "false",
        "null",
    ]
)
#: The hooks each kind of in-port needs (one of them).
HOOKS = {"push": ("on_record", "on_batch"), "query": ("on_query",)}
#: The arguments the runtime passes to each hook, after ``self``.
CALLS = {
    "on_record": ("port", "record"),
    "on_batch": ("port", "records"),
    "on_query": ("port", "request"),
}
#: Hooks every element may define, with the arguments the runtime passes after ``self``.
LIFECYCLE = {
    "on_start": ("params",),
    "on_end": ("port",),
    "on_finish": (),
    "snapshot": (),
    "restore": ("state",),
    "on_checkpoint": ("checkpoint",),
}


def class_problems(cls: type[Element]) -> list[str]:
    """Why ``cls``'s declarations cannot work, each as "declares …"/"has …" text."""
    ports, params = getattr(cls, "ports", ()), getattr(cls, "params", ())
    if not isinstance(ports, list | tuple) or not all(isinstance(p, Port) for p in ports):
        return [f"declares ports = {ports!r}; it must be a tuple of Port (push_in(...), ...)"]
    if not isinstance(params, list | tuple) or not all(isinstance(p, Param) for p in params):
        return [f"declares params = {params!r}; it must be a tuple of Param(...)"]
    found = [f"declares {p}" for p in map(declaration_problem, params) if p is not None]
    found += _duplicates("port", [p.name for p in ports])
    found += _duplicates("parameter", [p.name for p in params])
    for port in ports:
        if not isinstance(port.name, str) or not PORT_NAME.match(port.name):
            found.append(
                f"declares port {port.name!r}, a name a .topo file cannot spell "
                "(ASCII letters, digits and '_', not starting with a digit)"
            )
        elif port.name in RESERVED:
            found.append(f"declares port '{port.name}', a reserved word of the .topo language")
    for spec in params:
        if found or spec.required or spec.default is None:
            continue
        if not value_matches(spec.type, spec.default):
            found.append(
                f"declares Param({spec.name!r}, {spec.type!r}) with the default "
                f"{spec.default!r}, which is not a {spec.type}"
            )
    found += _hooks(cls, ports)
    found += _lifecycle(cls)
    if issubclass(cls, Source):
        found += _source(cls, ports)
    return found


def _lifecycle(cls: type[Element]) -> list[str]:
    found = []
    for name, args in LIFECYCLE.items():
        hook = getattr(cls, name, None)
        if hook is None or hook is getattr(Element, name):
            continue
        problem = _kind_problem(hook) or _signature_problem(hook, args)
        if problem:
            found.append(f"defines {name}{problem}")
    return found


def _source(cls: type[Source], ports: tuple[Port, ...] | list[Port]) -> list[str]:
    found = []
    outs = [p.name for p in ports if p.kind == "push" and p.direction == "out"]
    if cls.source_port not in outs:
        found.append(
            f"is a Source whose records go to source_port = {cls.source_port!r}, which is not "
            f"one of its push out-ports ({', '.join(outs) or 'none'}): it would emit nothing"
        )
    if cls.generate is Source.generate and cls.generate_batches is Source.generate_batches:
        found.append("is a Source but defines no generate()")
    for name in ("generate", "generate_batches"):
        if _is_async(getattr(cls, name)):
            found.append(f"defines {name}() with async def; it must be a plain generator")
    return found


def _is_async(hook: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(hook) or inspect.isasyncgenfunction(hook)


def _kind_problem(hook: Callable[..., Any]) -> str | None:
    """Why a hook the runtime calls and uses at once cannot be async or a generator."""
    if _is_async(hook):
        return " with async def; the runtime calls it and does not await it"
    if inspect.isgeneratorfunction(hook):
        return " as a generator (it yields); the runtime calls it and runs none of its body"
    return None


def _duplicates(what: str, names: list[Any]) -> list[str]:
    return [f"declares the {what} {n!r} twice" for n, k in Counter(names).items() if k > 1]


def _hooks(cls: type[Element], ports: tuple[Port, ...] | list[Port]) -> list[str]:
    found = []
    for kind, names in HOOKS.items():
        needed = [p.name for p in ports if p.kind == kind and p.direction == "in"]
        if not needed:
            continue
        own = [n for n in names if getattr(cls, n, None) is not getattr(Element, n)]
        if not own:
            found.append(f"has {kind} in-port '{needed[0]}' but defines no {' or '.join(names)}")
        for name in own:
            hook = getattr(cls, name)
            problem = _kind_problem(hook) or _signature_problem(hook, CALLS[name])
            if problem:
                found.append(f"defines {name}{problem}")
    return found


def _signature_problem(hook: Callable[..., Any], args: tuple[str, ...]) -> str | None:
    """Why the runtime's call ``hook(self, *args)`` would fail, or None."""
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return None  # not introspectable (a builtin): trust it
    try:
        signature.bind(None, *args)
    except TypeError:
        return f"{signature}, but the runtime calls it as (self, {', '.join(args)})"
    return None
