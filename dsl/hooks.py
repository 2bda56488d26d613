"""Calling an element class's optional ``check_params`` hook, the same way in and out of process.

An element class may define ``check_params(params) -> Sequence[ParamProblem]`` as a
static or class method. The checker calls it with the validated parameters
(defaults filled in) once they have the declared types, so the class can look
inside values (e.g. parse an expression) before anything runs. It may also raise
:class:`~datablox.errors.ParameterError` for a single problem.

Parameters a class lists in ``calls`` name Python callables the element imports
when it starts; they are imported here too, so a wrong reference is reported by
``check``. That imports user code, so the checker calls this in its child process
whenever such a parameter has a value (see :mod:`datablox.dsl.classes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datablox.element import Element
from datablox.errors import ElementClassError, ParameterError
from datablox.ports import ParamProblem, validate_params
from datablox.registry import import_callable


def names_code(cls: type[Element], params: Mapping[str, Any]) -> bool:
    """Whether ``params`` give a value to one of ``cls``'s ``calls`` parameters."""
    return any(isinstance(params.get(name), str) for name in getattr(cls, "calls", ()))


def call_problems(
    cls: type[Element], display: str, values: Mapping[str, Any]
) -> list[ParamProblem]:
    """The ``calls`` parameters of ``values`` whose callable cannot be imported."""
    problems = []
    for name in getattr(cls, "calls", ()):
        ref = values.get(name)
        if not isinstance(ref, str):
            continue
        label = f"parameter '{name}' of {display}"
        try:
            import_callable(ref)
        except ElementClassError as exc:
            problems.append(ParamProblem(name, f"{label}: {exc.message}", exc.hint))
        except BaseException as exc:  # user code ending the process is reported, not obeyed
            module = ref.partition(":")[0]
            if isinstance(exc, SystemExit):
                what = f"called sys.exit({exc.code!r})"
            elif isinstance(exc, KeyboardInterrupt):
                what = "raised KeyboardInterrupt"
            else:
                what = f"raised {type(exc).__name__}: {exc}"
            problems.append(
                ParamProblem(
                    name,
                    f"{label}: module '{module}' {what} while being imported",
                    "a module must not end the program when imported; put such code under "
                    '`if __name__ == "__main__":`',
                )
            )
    return problems


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
    return call_problems(cls, display, values) + run_hook(cls, display, values)
