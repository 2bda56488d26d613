"""Checking the Python callables elements name in parameters, such as ``Map(fn="shape:f")``.

An element class lists such parameters in ``calls``; the element imports the
callable when it starts. ``check`` imports it first, in the child process that
imports user classes (``python -m datablox.dsl.probe``), so a module that exits,
is killed or hangs while imported cannot end the check: each callable that cannot
be imported is a problem of its own parameter, at its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from datablox.dsl.classes import (
    IMPORT_TIMEOUT,
    how_it_ended,
    last_output,
    messages,
    run_child,
)
from datablox.element import Element
from datablox.errors import ElementClassError
from datablox.ports import ParamProblem
from datablox.registry import import_callable

_HINT = (
    "a module must not end the program when imported; put such code under "
    '`if __name__ == "__main__":`'
)


@dataclass(frozen=True)
class Call:
    """One callable an element names: element index, class, parameter, reference."""

    index: int
    cls: str
    param: str
    ref: str

    def problem(self, what: str, hint: str | None = None) -> ParamProblem:
        return ParamProblem(self.param, f"parameter '{self.param}' of {self.cls}: {what}", hint)

    @property
    def module(self) -> str:
        return self.ref.partition(":")[0]


def calls_of(index: int, display: str, cls: type[Element], params: Mapping[str, Any]) -> list[Call]:
    """The callables element ``index`` of class ``cls`` names in ``params``."""
    return [
        Call(index, display, name, params[name])
        for name in getattr(cls, "calls", ())
        if isinstance(params.get(name), str)
    ]


def ended_how(exc: BaseException) -> str:
    """What user code did that ended (or would end) the process importing it."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt"
    return f"raised {type(exc).__name__}: {exc}"


def call_problem(call: Call) -> ParamProblem | None:
    """Import ``call``'s callable here; what is wrong with it, or None."""
    try:
        import_callable(call.ref)
    except ElementClassError as exc:
        return call.problem(exc.message, exc.hint)
    except BaseException as exc:  # user code ending the process is reported, not obeyed
        return call.problem(f"module '{call.module}' {ended_how(exc)} while being imported", _HINT)
    return None


def check_calls(calls: list[Call], in_process: bool = False) -> dict[Call, ParamProblem]:
    """The callables of ``calls`` that cannot be imported, with why.

    Imported in one child process; when one of them ends that process (``os._exit``,
    a signal) or hangs, it is reported and a new child goes on with the rest.
    ``in_process`` imports them here instead (the checker's ``resolve`` mode).
    """
    if in_process:
        return {c: p for c in calls if (p := call_problem(c)) is not None}
    found: dict[Call, ParamProblem] = {}
    left = list(calls)
    while left:
        out, returncode, stderr = run_child({"classes": {}, "calls": [asdict(c) for c in left]})
        answered, calling, done = _read(out)
        for k, problem in answered.items():
            if problem is not None:
                found[left[k]] = ParamProblem(**problem)
        if done:
            break
        # the child ended or hung while importing left[calling]; the rest go on in a new one
        k = calling if calling is not None else len(answered)
        call = left[k]
        if returncode is None:
            found[call] = call.problem(
                f"importing module '{call.module}' did not finish within {IMPORT_TIMEOUT:g} s",
                "does the module wait for something (input, a server, a lock) when imported?",
            )
        else:
            found[call] = call.problem(
                f"module '{call.module}' {how_it_ended(returncode)} while being imported",
                _HINT + last_output(stderr),
            )
        left = left[k + 1 :]
    return found


def _read(out: str) -> tuple[dict[int, dict[str, Any] | None], int | None, bool]:
    """The child's answers by call number, the call it was importing last, and whether
    it finished."""
    answered: dict[int, dict[str, Any] | None] = {}
    calling: int | None = None
    done = False
    for msg in messages(out):
        if "calling" in msg:
            calling = msg["calling"]
        elif "call" in msg:
            answered[msg["call"]] = msg["problem"]
            calling = None
        elif msg.get("done"):
            done = True
    return answered, calling, done
