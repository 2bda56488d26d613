"""Starting, watching, restarting and killing element processes on one node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from datablox.runtime.process import EXIT_ELEMENT_ERROR, EXIT_START_FAILED


@dataclass
class Child:
    """One element process and what the supervisor knows of it."""

    name: str
    spec: dict[str, Any]
    popen: subprocess.Popen[bytes]
    log_path: Path
    endpoints: dict[str, str] = field(default_factory=dict)
    killed: bool = False


@dataclass(frozen=True)
class Exit:
    """What happened when a child exited: finished, failed to start, or crashed."""

    child: Child
    code: int
    kind: str  # "finished" | "start_failed" | "element_error" | "crashed" | "killed"


def log_tail(path: Path, lines: int = 12) -> str:
    """The last lines of a process log, to show why it died."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class Supervisor:
    """Launches element processes as ``python -m datablox.runtime.process SPEC``."""

    def __init__(self, run_dir: Path, cpus: list[int] | None = None) -> None:
        self.run_dir = run_dir
        #: the CPUs element processes may run on (the node's CPU budget), None: all
        self.cpus = cpus
        self.children: dict[str, Child] = {}

    def launch(self, spec: dict[str, Any]) -> Child:
        name = spec["process"]
        specs = self.run_dir / "specs"
        logs = self.run_dir / "logs"
        specs.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        spec_path = specs / f"{name}.json"
        # readable by its owner only: it holds the process's control key
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(spec))
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as log:
            # A session of its own: a Ctrl-C meant for the master must not hit
            # elements directly; the master stops them in order instead.
            popen = subprocess.Popen(
                [sys.executable, "-m", "datablox.runtime.process", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if self.cpus is not None:
            try:
                os.sched_setaffinity(popen.pid, self.cpus)
            except OSError:
                pass  # it exited already; reaped and reported as usual
        child = Child(name, spec, popen, log_path)
        self.children[name] = child
        return child

    def reap(self) -> list[Exit]:
        """Exits since the last call."""
        exits: list[Exit] = []
        for name, child in list(self.children.items()):
            code = child.popen.poll()
            if code is None:
                continue
            del self.children[name]
            if code == 0:
                kind = "finished"  # it had finished before a kill reached it
            elif child.killed:
                kind = "killed"
            elif code in (EXIT_START_FAILED, EXIT_ELEMENT_ERROR):
                kind = "start_failed" if code == EXIT_START_FAILED else "element_error"
            else:
                kind = "crashed"
            exits.append(Exit(child, code, kind))
        return exits

    def signal_all(self, sig: int) -> None:
        for child in self.children.values():
            if sig == signal.SIGKILL:
                child.killed = True
            try:
                os.killpg(child.popen.pid, sig)
            except ProcessLookupError:
                pass

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every child and wait for each to be gone."""
        self.signal_all(signal.SIGKILL)
        for child in list(self.children.values()):
            try:
                child.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.children.clear()
