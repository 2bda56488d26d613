"""Loading the element classes a topology names: built-ins in-process, user code in a child.

A user module may do anything while it is imported: call ``sys.exit``, call
``os._exit``, raise ``KeyboardInterrupt``, hang. Importing it inside ``check``
would let it end the check silently, so every user class of a topology is
imported in one child process (``python -m datablox.dsl.probe``) that reports
their ports, parameters and ``check_params`` findings as JSON. The checker then
works on stand-in classes built from that report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from datablox import registry
from datablox.dsl import ir
from datablox.dsl.hooks import hook_problems
from datablox.element import Element
from datablox.errors import ElementClassError
from datablox.ports import REQUIRED, Param, ParamProblem, Port

#: Seconds the child may take to import every user class of a topology.
IMPORT_TIMEOUT = 60.0
_HINT = (
    "a module that defines element classes must not end the program when imported; "
    'put such code under `if __name__ == "__main__":`'
)


@dataclass
class Loaded:
    """One element class reference: its class (or stand-in), or why it cannot be loaded."""

    cls: type[Element] | None = None
    error: ElementClassError | None = None
    #: ``check_params`` findings by element index, when the hook ran in the child.
    problems: dict[int, list[ParamProblem]] | None = None

    def problems_for(self, index: int, ref: str, params: Mapping[str, Any]) -> list[ParamProblem]:
        if self.cls is None:
            return []
        if self.problems is not None:
            return self.problems.get(index, [])
        return hook_problems(self.cls, ref, params)


def _stand_in(info: dict[str, Any]) -> type[Element]:
    """An Element subclass that declares what the child reported, for the checker to read."""
    ports = tuple(
        Port(p["name"], p["kind"], p["direction"], p["fields"], p["doc"], p.get("when"))
        for p in info["ports"]
    )
    params = tuple(
        Param(
            p["name"],
            p["type"],
            REQUIRED if p.get("required") else p.get("default"),
            p["doc"],
            tuple(p["choices"]) if p["choices"] is not None else None,
            p.get("least"),
            p.get("above"),
        )
        for p in info["params"]
    )
    attrs = {
        "ports": ports,
        "params": params,
        "cheap": info["cheap"],
        "writes": tuple(info.get("writes", ())),
        "calls": tuple(info.get("calls", ())),
        "reads": tuple(info.get("reads", ())),
        "shard_traits_": info.get("shard"),
        "__doc__": info["doc"],
        "__module__": info["module"],
        "__qualname__": info["qualname"],
    }
    return type(info["qualname"].rpartition(".")[2], (Element,), attrs)


def _module_of(ref: str) -> str:
    if ":" not in ref:
        ref = registry.registered().get(ref, ref)
    return ref.partition(":")[0]


def how_it_ended(returncode: int) -> str:
    """How a child process that did not finish its answer ended, said of the module."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"ended the process (os._exit({returncode}))"


def last_output(stderr: str) -> str:
    """The end of a hint: the child's last line of output, if it printed any."""
    tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    return f"; its last output: {tail[0]}" if tail else ""


def _ended_silently(ref: str, returncode: int, stderr: str) -> ElementClassError:
    module = _module_of(ref)
    what = how_it_ended(returncode)
    return ElementClassError(
        f"module '{module}' {what} while being imported", _HINT + last_output(stderr)
    )


def run_child(request: dict[str, Any]) -> tuple[str, int | None, str]:
    """Run ``python -m datablox.dsl.probe`` on ``request`` with this process's import path:
    its output, its exit code (None when it did not finish within IMPORT_TIMEOUT), its
    standard error."""
    payload = json.dumps({"sys_path": sys.path, **request}, default=repr)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "datablox.dsl.probe"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return out, None, ""
    return proc.stdout, proc.returncode, proc.stderr


@dataclass
class _Probe:
    """The answers of one child process run."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    importing: str | None = None
    done: bool = False


def _run_probe(checks: dict[str, list[list[Any]]]) -> _Probe:
    probe = _Probe()
    out, returncode, stderr = run_child({"classes": checks})
    _read(probe, out)
    if returncode is None:
        ref = probe.importing or next(iter(checks))
        error = ElementClassError(
            f"importing module '{_module_of(ref)}' did not finish within {IMPORT_TIMEOUT:g} s",
            "does the module wait for something (input, a server, a lock) when imported?",
        )
        probe.answers[ref] = {"failed": error}
    elif not probe.done:
        ref = probe.importing or next(iter(checks))
        probe.answers[ref] = {"failed": _ended_silently(ref, returncode, stderr)}
    return probe


def messages(out: str) -> Iterator[dict[str, Any]]:
    """The child's JSON-line messages in ``out`` (a line cut short by its end is skipped)."""
    for line in out.splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue


def _read(probe: _Probe, out: str) -> None:
    for msg in messages(out):
        if "importing" in msg:
            probe.importing = msg["importing"]
        elif "class" in msg:
            probe.answers[msg["class"]] = msg
            probe.importing = None
        elif msg.get("done"):
            probe.done = True


def _from_answer(answer: dict[str, Any]) -> Loaded:
    if "failed" in answer:
        return Loaded(error=answer["failed"])
    if "error" in answer:
        err = answer["error"]
        return Loaded(error=ElementClassError(err["message"], err.get("hint")))
    problems = {
        int(index): [ParamProblem(**p) for p in found]
        for index, found in answer["problems"].items()
    }
    return Loaded(cls=_stand_in(answer["info"]), problems=problems)


def load_classes(
    topo: ir.Topology, resolve: Callable[[str], type[Element]] | None = None
) -> dict[str, Loaded]:
    """Every class ``topo`` names, by reference.

    With ``resolve`` given, every class is resolved in-process through it.
    Otherwise built-in classes are, and all user classes are imported together
    in one child process.
    """
    loaded: dict[str, Loaded] = {}
    checks: dict[str, list[list[Any]]] = {}
    for i, el in enumerate(topo.elements):
        if el.cls in loaded or not el.cls:
            continue
        if resolve is None and not registry.is_builtin(el.cls):
            checks.setdefault(el.cls, []).append([i, el.params])
            continue
        try:
            loaded[el.cls] = Loaded(cls=(resolve or registry.resolve)(el.cls))
        except ElementClassError as exc:
            loaded[el.cls] = Loaded(error=exc)
        except Exception as exc:  # a user's class that breaks while being inspected
            loaded[el.cls] = Loaded(
                error=ElementClassError(
                    f"loading element class '{el.cls}' failed: {type(exc).__name__}: {exc}"
                )
            )
    while checks:
        # A module that ends the child leaves the classes after it unanswered: ask again.
        probe = _run_probe(checks)
        for ref, answer in probe.answers.items():
            loaded[ref] = _from_answer(answer)
        checks = {ref: c for ref, c in checks.items() if ref not in probe.answers}
    return loaded
