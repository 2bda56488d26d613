"""Finding element classes: registered names and ``package.module:Class`` references.

Built-in and third-party classes register under the entry-point group
``datablox.elements`` (name = module:Class). A ``.topo`` may also name any
importable class directly as ``package.module:Class``.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

from datablox.element import Element, check_element_class
from datablox.errors import ElementClassError
from datablox.ports import suggest

GROUP = "datablox.elements"

_loaded: dict[str, type[Element]] = {}


def registered() -> dict[str, str]:
    """Registered class names mapped to their ``module:Class`` targets."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def _import(ref: str, display: str) -> type[Element]:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ElementClassError(
            f"'{ref}' is not a class reference", "write package.module:ClassName"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise ElementClassError(
            f"cannot import module '{module_name}' for element class '{display}': "
            f"no module named '{missing}'",
            "check the spelling, and that the package is installed or its folder "
            "is on PYTHONPATH (the .topo file's folder is added automatically)",
        ) from None
    except Exception as exc:  # a user's module failing at import time
        raise ElementClassError(
            f"importing module '{module_name}' for element class '{display}' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            near = suggest(part, names)
            raise ElementClassError(
                f"module '{module_name}' has no class '{attr}'",
                f"did you mean '{near}'?" if near else None,
            )
        obj = getattr(obj, part)
    return check_element_class(obj, display)


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
