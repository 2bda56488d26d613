"""Calling an element class's optional ``check_params`` hook, the same way in and out of process.

An element class may define ``check_params(params) -> Sequence[ParamProblem]`` as a
static or class method. The checker calls it with the validated parameters
(defaults filled in) once they have the declared types, so the class can look
inside values (e.g. parse an expression) before anything runs. It may also raise
:class:`~datablox.errors.ParameterError` for a single problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datablox.element import Element
from datablox.errors import ParameterError
from datablox.ports import ParamProblem, validate_params


def run_hook(cls: type[Element], display: str, values: Mapping[str, Any]) -> list[ParamProblem]:
    """The problems ``cls.check_params`` finds in ``values`` (none if it has no such hook)."""
    hook = getattr(cls, "check_params", None)
    if hook is None:
        return []
    try:
        found = hook(dict(values))
    except ParameterError as exc:
        return [ParamProblem(exc.param or "", exc.message, exc.hint)]
    except Exception as exc:  # a user's hook that breaks is the class's fault, said as such
        return [ParamProblem("", f"{display}.check_params failed: {type(exc).__name__}: {exc}")]
    problems = []
    for item in found or ():
        if isinstance(item, ParamProblem):
            problems.append(item)
        else:
            problems.append(ParamProblem("", f"{display}.check_params: {item}"))
    return problems


def hook_problems(
    cls: type[Element], display: str, params: Mapping[str, Any]
) -> list[ParamProblem]:
    """Validate ``params``; when they have the declared types, run the class's hook on them."""
    values, errors = validate_params(display, cls.params, params)
    if errors:
        return []  # the checker reports these; the hook would only see wrong types
    return run_hook(cls, display, values)
