"""Running a topology from Python: ``datablox.run("my.topo")``, like the CLI's ``run``."""

from __future__ import annotations

import os
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from datablox.errors import RunError

if TYPE_CHECKING:
    from datablox.master.service import RunResult

DISPLAYS = ("quiet", "plain", "live")
OVERRIDES = 'overrides= takes a list of "element.param=value" strings'


def run(
    topology: str | os.PathLike[str] | dict[str, Any],
    *,
    overrides: Iterable[str] = (),
    display: str = "quiet",
    **options: Any,
) -> RunResult:
    """Check and run a topology on this machine; return when it has finished.

    ``topology`` is a ``.topo`` path, a tradecraft ``.json`` path (each a str
    or a path object) or a tradecraft dict. ``overrides`` is a list of
    ``element.param=value`` strings, as ``--set`` takes them; a single string
    is refused rather than guessed at (write ``overrides=["src.count=5"]``).
    ``display`` is ``quiet``, ``plain`` or ``live``. ``options`` are the fields
    of ``master.service.RunOptions`` (``fusion``, ``batch_size``, ``run_dir``…).

    Raises ``RunError`` naming the argument (``codec=``, ``batch_size=``…) for
    an argument of the wrong type or out of range, and ``TopologyError`` for a
    topology with errors, both before anything starts; a run that fails
    returns a result whose ``exit_code`` is 1.
    """
    from datablox import dsl
    from datablox.master.display import LiveDisplay, PlainDisplay, QuietDisplay
    from datablox.master.embedded import run_embedded
    from datablox.master.service import RunOptions
    from datablox.ports import suggest

    source = _topology(topology)
    wanted = _overrides(overrides)
    if display not in DISPLAYS:
        raise RunError(f"display= must be quiet, plain or live, got {display!r}")
    known = [f.name for f in fields(RunOptions)]
    for name in options:
        if name not in known:
            near = suggest(name, known)
            hint = f"did you mean '{near}'?" if near else f"options: {', '.join(known)}"
            raise RunError(f"run() has no argument '{name}'", hint)
    run_options = RunOptions(**options)
    run_options.validate(spell=lambda name: f"{name}=")
    if isinstance(source, dict):
        compiled = dsl.load_tradecraft(source, wanted)
    else:
        compiled = dsl.load_any(source, wanted)
    shown = {"quiet": QuietDisplay, "plain": PlainDisplay, "live": LiveDisplay}[display]()
    return run_embedded(compiled.tradecraft, run_options, shown)


def _received(value: Any) -> str:
    """What a caller passed, for an error message: ``int 123``, ``list ['a.topo']``."""
    return "None" if value is None else f"{type(value).__name__} {reprlib.repr(value)}"


def _topology(topology: Any) -> dict[str, Any] | str:
    """The tradecraft dict, or the path as a str; RunError for anything else."""
    if isinstance(topology, dict):
        return topology
    path = os.fspath(topology) if isinstance(topology, str | os.PathLike) else None
    if not isinstance(path, str):
        raise RunError(
            "topology (the first argument) must be a .topo path, a tradecraft .json path or "
            f"a tradecraft dict, got {_received(topology)}"
        )
    return path


def _overrides(overrides: Any) -> list[str]:
    """The overrides as a list; RunError for a lone string (it would be read per character)."""
    if isinstance(overrides, str):
        raise RunError(
            f"{OVERRIDES}, got the string {overrides!r}", f"write overrides={[overrides]!r}"
        )
    if isinstance(overrides, bytes | Mapping) or not isinstance(overrides, Iterable):
        raise RunError(f"{OVERRIDES}, got {_received(overrides)}")
    wanted = list(overrides)
    for item in wanted:
        if not isinstance(item, str):
            raise RunError(f"{OVERRIDES}, got {_received(item)} in it")
    return wanted
