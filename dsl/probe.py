"""The child process that imports user element classes for the checker and reports on them.

Run as ``python -m datablox.dsl.probe``. It reads one JSON request on standard
input and writes JSON lines on its standard output: ``{"importing": ref}``
before each import (so the parent knows who ended the process if it ends),
then ``{"class": ref, ...}`` per class; for each callable the request names
(:mod:`datablox.dsl.calls`), ``{"calling": k}`` before importing it and
``{"call": k, "problem": ...}`` after; finally ``{"done": true}``. Whatever
user code prints goes to standard error, so it cannot corrupt the answer.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any

from datablox import registry
from datablox.dsl.calls import Call, call_problem, ended_how
from datablox.dsl.hooks import hook_problems
from datablox.dsl.shardcheck import shard_traits
from datablox.element import Element
from datablox.errors import ElementClassError
from datablox.ports import REQUIRED, Param, Port


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _param(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "type": p.type, "doc": p.doc}
    if p.default is REQUIRED:
        out["required"] = True
    else:
        # A default JSON cannot carry only matters when the element runs, not to the checker.
        out["default"] = p.default if _jsonable(p.default) else repr(p.default)
    out["least"], out["above"] = p.least, p.above
    out["choices"] = (
        list(p.choices) if p.choices is not None and _jsonable(list(p.choices)) else None
    )
    return out


def _port(p: Port) -> dict[str, Any]:
    fields = dict(p.fields) if p.fields is not None else None
    return {
        "name": p.name,
        "kind": p.kind,
        "direction": p.direction,
        "fields": fields,
        "doc": p.doc,
        "when": dict(p.when) if p.when is not None else None,
    }


def describe(cls: type[Element]) -> dict[str, Any]:
    """What the checker needs to know about an element class, as JSON."""
    return {
        "qualname": cls.__qualname__,
        "module": cls.__module__,
        "doc": cls.__doc__,
        "cheap": bool(getattr(cls, "cheap", False)),
        "writes": [str(name) for name in getattr(cls, "writes", ())],
        "calls": [str(name) for name in getattr(cls, "calls", ())],
        "reads": [str(name) for name in getattr(cls, "reads", ())],
        "ports": [_port(p) for p in cls.ports],
        "params": [_param(p) for p in cls.params],
        "shard": shard_traits(cls),
    }


def _module_of(ref: str) -> str:
    if ":" not in ref:
        ref = registry.registered().get(ref, ref)
    return ref.partition(":")[0]


def _ended(module: str, exc: BaseException, doing: str) -> dict[str, str]:
    return {
        "message": f"module '{module}' {ended_how(exc)} while {doing}",
        "hint": "a module that defines element classes must not end the program when imported; "
        'put such code under `if __name__ == "__main__":`',
    }


def _one(ref: str, checks: list[list[Any]]) -> dict[str, Any]:
    module = _module_of(ref)
    try:
        cls = registry.resolve(ref)
    except ElementClassError as exc:
        return {"error": {"message": exc.message, "hint": exc.hint}}
    except BaseException as exc:  # reported to the user, whatever it is
        return {"error": _ended(module, exc, "being imported")}
    try:
        info = describe(cls)
        problems = {}
        for index, params in checks:
            found = hook_problems(cls, ref, params)
            if found:
                problems[str(index)] = [asdict(p) for p in found]
    except BaseException as exc:
        return {"error": _ended(module, exc, f"element class '{ref}' was being inspected")}
    return {"info": info, "problems": problems}


def main() -> None:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # user code printing to stdout writes to stderr instead
    sys.stdout = sys.stderr
    request = json.load(sys.stdin)
    sys.path[:] = request["sys_path"]
    for ref, checks in request["classes"].items():
        out.write(json.dumps({"importing": ref}) + "\n")
        out.flush()
        answer = _one(ref, checks)
        out.write(json.dumps({"class": ref, **answer}) + "\n")
        out.flush()
    for k, call in enumerate(request.get("calls", [])):
        out.write(json.dumps({"calling": k}) + "\n")
        out.flush()
        problem = call_problem(Call(**call))
        out.write(json.dumps({"call": k, "problem": problem and asdict(problem)}) + "\n")
        out.flush()
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
