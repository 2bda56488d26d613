"""Running a topology from Python: ``datablox.run("my.topo")``, like the CLI's ``run``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datablox.master.service import RunResult


def run(
    topology: str | os.PathLike[str] | dict[str, Any],
    *,
    overrides: Sequence[str] = (),
    display: str = "quiet",
    **options: Any,
) -> RunResult:
    """Check and run a topology on this machine; return when it has finished.

    ``topology`` is a ``.topo`` path, a tradecraft ``.json`` path or a
    tradecraft dict. ``overrides`` are ``element.param=value`` strings, as
    ``--set`` takes them. ``display`` is ``quiet``, ``plain`` or ``live``.
    ``options`` are the fields of ``master.service.RunOptions`` (``fusion``,
    ``batch_size``, ``run_dir``…). Raises ``TopologyError`` for a topology with
    errors; a run that fails returns a result whose ``exit_code`` is 1.
    """
    from datablox import dsl
    from datablox.master.display import LiveDisplay, PlainDisplay, QuietDisplay
    from datablox.master.embedded import run_embedded
    from datablox.master.service import RunOptions

    if isinstance(topology, dict):
        compiled = dsl.load_tradecraft(topology, overrides)
    else:
        compiled = dsl.load_any(str(Path(topology)), overrides)
    shown = {"quiet": QuietDisplay, "plain": PlainDisplay, "live": LiveDisplay}[display]()
    return run_embedded(compiled.tradecraft, RunOptions(**options), shown)
