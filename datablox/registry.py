"""Finding element classes: registered names and ``package.module:Class`` references.

Built-in and third-party classes register under the entry-point group
``datablox.elements`` (name = module:Class). A ``.topo`` may also name any
importable class directly as ``package.module:Class``.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from typing import Any

from datablox.declarations import class_problems
from datablox.element import Element, check_element_class
from datablox.errors import ElementClassError
from datablox.ports import TYPE_NAMES, suggest

GROUP = "datablox.elements"

_loaded: dict[str, type[Element]] = {}


def registered() -> dict[str, str]:
    """Registered class names mapped to their ``module:Class`` targets."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def import_object(ref: str, display: str, what: str = "element class") -> Any:
    """The object named by ``ref`` (``package.module:attr``); the one way user code is imported.

    Raises :class:`ElementClassError` saying what is missing, for the ``what``
    called ``display`` (e.g. element class 'mod:Cls', function 'mod:fn').
    """
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ElementClassError(
            f"'{ref}' is not a {'class' if what == 'element class' else what} reference",
            f"write package.module:{'ClassName' if what == 'element class' else 'name'}",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise ElementClassError(
            f"cannot import module '{module_name}' for {what} '{display}': "
            f"no module named '{missing}'",
            "check the spelling, and that the package is installed or its folder "
            "is on PYTHONPATH (the .topo file's folder is added automatically)",
        ) from None
    except Exception as exc:  # a user's module failing at import time
        raise ElementClassError(
            f"importing module '{module_name}' for {what} '{display}' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            near = suggest(part, names)
            kind = "class " if what == "element class" else ""
            raise ElementClassError(
                f"module '{module_name}' has no {kind}'{attr}'",
                f"did you mean '{near}'?" if near else None,
            )
        obj = getattr(obj, part)
    return obj


def import_callable(ref: str) -> Any:
    """The callable ``ref`` names (``package.module:function``), for a parameter that holds one.

    Raises :class:`ElementClassError` when it cannot be imported or is not callable.
    """
    obj = import_object(ref, ref, "function")
    if not callable(obj):
        raise ElementClassError(
            f"'{ref}' is not callable (it is of type {type(obj).__name__})",
            "name a function (or any callable) as package.module:name",
        )
    return obj


def check_declarations(cls: type[Element], display: str) -> None:
    """Raise :class:`ElementClassError` when a class's declarations cannot work: malformed
    ports or params, a port .topo cannot spell, an in-port without its hook, a hook the
    runtime cannot call."""
    problems = class_problems(cls)
    if problems:
        raise ElementClassError(
            f"element class '{display}' {problems[0]}",
            f"fix the class: parameter types are {', '.join(TYPE_NAMES)}, "
            "or several joined with '|' (e.g. 'str|null')"
            if "unknown type name" in problems[0] or "type is not a string" in problems[0]
            else "fix the class (see `datablox-master describe` and docs/elements.md)",
        )


def _import(ref: str, display: str) -> type[Element]:
    cls = check_element_class(import_object(ref, display), display)
    check_declarations(cls, display)
    return cls


def is_builtin(ref: str) -> bool:
    """Whether ``ref`` names a class of the datablox package (or no class at all).

    Other classes are user code: the checker imports them in a child process.
    """
    if ":" not in ref:
        target = registered().get(ref)
        if target is None:
            return True  # resolve() reports the unknown name
        ref = target
    module = ref.partition(":")[0]
    return module == "datablox" or module.startswith("datablox.")


def resolve(ref: str) -> type[Element]:
    """The element class named by ``ref`` (a registered name or ``module:Class``)."""
    cls = _loaded.get(ref)
    if cls is not None:
        return cls
    if ":" in ref:
        cls = _import(ref, ref)
    else:
        names = registered()
        target = names.get(ref)
        if target is None:
            near = suggest(ref, list(names))
            hint = (
                f"did you mean '{near}'?"
                if near
                else "name a registered class (datablox-master classes) or use package.module:Class"
            )
            raise ElementClassError(f"unknown element class '{ref}'", hint)
        cls = _import(target, ref)
    _loaded[ref] = cls
    return cls


def add_search_path(folder: str) -> None:
    """Make user modules in ``folder`` importable (the .topo file's folder)."""
    if folder not in sys.path:
        sys.path.insert(0, folder)
