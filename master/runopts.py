"""How to run a topology (RunOptions, one field per CLI option) and how a run ended (RunResult)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datablox.codec import codec_names, get_codec
from datablox.errors import RunError
from datablox.master.planner import FusionMode
from datablox.master.state import RunState

#: Care-takers and masters heartbeat every 0.5 s: a node is declared lost after 3 missed.
MIN_HEARTBEAT_TIMEOUT = 1.5


def cli_flag(name: str) -> str:
    """How the CLI spells the option of field ``name``: ``batch_size`` is ``--batch-size``."""
    return "--" + name.replace("_", "-")


#: The largest value of a whole-number option: a count within 64 bits (the control
#: messages carry it), and sizes that ZeroMQ and memory can take.
LARGEST_COUNT = 2**62
LARGEST = {"batch_size": 1_000_000, "hwm": 1_000_000, "slots": 4096, "max_processes": 4096}


@dataclass
class RunOptions:
    """How to run a topology (every field has a CLI option of the same name)."""

    fusion: FusionMode = "auto"
    slots: int | None = None
    batch_size: int = 1024
    flush_ms: float = 2.0
    codec: str | None = None
    hwm: int = 8
    max_restarts: int = 3
    run_dir: Path | None = None
    startup_timeout: float = 60.0
    #: seconds a stop may take to drain before every element process is killed
    drain_timeout: float = 30.0
    #: seconds between checkpoints (0: only the state at start is kept)
    snapshot_every: float = 1.0
    #: let the scaling policy grow and shrink shards
    autoscale: bool = True
    #: changes of shards forced at a point of the stream (``SHARD:members=N@RECORDS``, ...)
    reshard: list[str] = field(default_factory=list)
    #: the most element processes a node runs, shard members included
    #: (None: 4 per core, at least 16)
    max_processes: int | None = None
    #: seconds a care-taker may stay silent before its node is declared lost
    heartbeat_timeout: float = 5.0
    #: more modules to send to the nodes: folders, or importable package names
    ship: list[str] = field(default_factory=list)
    #: encrypt the data plane (CURVE on every push and query connection)
    encrypt_data: bool = False
    #: the most records the run may send to dead letters, over every element, before it
    #: stops and fails (None: no limit)
    max_dead_letters: int | None = None

    def __post_init__(self) -> None:
        # anything else is left for validate() to refuse with the option's name
        if isinstance(self.run_dir, str | os.PathLike) and not isinstance(self.run_dir, Path):
            self.run_dir = Path(self.run_dir)

    def validate(self, spell: Callable[[str], str] = cli_flag) -> None:
        """Raise RunError naming the first option out of range (before anything starts).

        ``spell`` turns a field name into the option as the caller's user wrote it:
        a CLI flag by default, a keyword argument for ``datablox.run``.
        """
        whole = {"batch_size": 1, "hwm": 1, "max_restarts": 0}
        if self.slots is not None:
            whole["slots"] = 1
        if self.max_processes is not None:
            whole["max_processes"] = 1
        if self.max_dead_letters is not None:
            whole["max_dead_letters"] = 0
        for name, least in whole.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise RunError(
                    f"{spell(name)} must be a whole number of at least {least}, got {value!r}"
                )
            most = LARGEST.get(name, LARGEST_COUNT)
            if value > most:
                raise RunError(f"{spell(name)} must be at most {most:,}, got {value:,}")
        for name, positive in (
            ("flush_ms", False),
            ("startup_timeout", True),
            ("drain_timeout", True),
            ("snapshot_every", False),
            ("heartbeat_timeout", True),
        ):
            value = getattr(self, name)
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
            )
            if not ok or (positive and value == 0):
                need = "more than 0" if positive else "0 or more"
                raise RunError(f"{spell(name)} must be {need}, got {value!r}")
        if self.heartbeat_timeout < MIN_HEARTBEAT_TIMEOUT:
            raise RunError(
                f"{spell('heartbeat_timeout')} must be at least {MIN_HEARTBEAT_TIMEOUT:g} s "
                f"(3 heartbeats), got {self.heartbeat_timeout!r}"
            )
        if self.fusion not in ("auto", "off", "max"):
            raise RunError(f"{spell('fusion')} must be auto, off or max, got {self.fusion!r}")
        names = codec_names()
        if self.codec is not None and self.codec not in names:
            known = f"{', '.join(names[:-1])} or {names[-1]}"
            raise RunError(f"{spell('codec')} must be {known}, got {self.codec!r}")
        get_codec(self.codec)  # installed, and $DATABLOX_CODEC names one when codec is None
        for name in ("autoscale", "encrypt_data"):
            if not isinstance(getattr(self, name), bool):
                raise RunError(f"{spell(name)} must be True or False, got {getattr(self, name)!r}")
        for name in ("reshard", "ship"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RunError(f"{spell(name)} takes a list of strings, got {value!r}")
        if self.run_dir is not None and not isinstance(self.run_dir, Path):
            raise RunError(
                f"{spell('run_dir')} must be a folder path (a str or Path), "
                f"got {type(self.run_dir).__name__} {self.run_dir!r}"
            )


@dataclass
class RunResult:
    """How a run ended, with the final state for summaries."""

    exit_code: int
    interrupted: bool
    state: RunState
    run_dir: Path
    elapsed: float
    problems: list[str] = field(default_factory=list)
    #: checkpoints completed, restores, snapshot figures
    checkpoints: dict[str, Any] = field(default_factory=dict)
    #: per shard: members, partitions per member, decisions, timeline, moves
    shards: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    #: ran on care-takers that keep their run folders on their own hosts
    remote: bool = False

    @property
    def finished_after(self) -> float:
        """Seconds from the start of the run to the last element's finish: ``elapsed``
        without the processes' exit (``elapsed`` when an element did not finish)."""
        times = [view.finished_after for view in self.state.elements.values()]
        if not times or any(t is None for t in times):
            return self.elapsed
        return max(t for t in times if t is not None)

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (``--summary-json``)."""
        st = self.state
        return {
            "exit_code": self.exit_code,
            "interrupted": self.interrupted,
            "elapsed": self.elapsed,
            "finished_after": self.finished_after,
            "run_dir": str(self.run_dir),
            "problems": self.problems,
            "warnings": st.warnings,
            "lost": st.lost(),
            "checkpoints": self.checkpoints,
            "shards": self.shards,
            "connections": st.connection_figures(),
            "elements": {
                name: {
                    **view.stats,
                    **dict(zip(("busy", "blocked", "idle"), view.shares(self.elapsed))),
                    "class": view.cls,
                    "process": view.process,
                    "node": view.node,
                    "failed": view.failed,
                    "restarts": st.processes[view.process].restarts,
                    "peak_rss": st.processes[view.process].peak_rss,
                }
                for name, view in st.elements.items()
            },
            "processes": {
                name: {
                    "node": p.node,
                    "elements": p.elements,
                    "restarts": p.restarts,
                    "exit": p.exited,
                    "exit_code": p.exit_code,
                    "peak_rss": p.peak_rss,
                }
                for name, p in st.processes.items()
            },
        }


__all__ = ["RunOptions", "RunResult"]
