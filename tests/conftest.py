"""Fixtures: a master and care-taker inside the test process; leak checks for processes."""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq

from datablox.caretaker.agent import CareTaker
from datablox.master.cluster import Cluster as NodeCluster
from datablox.master.display import QuietDisplay
from datablox.master.embedded import local_cluster
from datablox.master.service import Run, RunOptions, RunResult

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 20.0,
    every: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)  # the poll interval of a deadline loop, not a wait for a condition


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Every process a test starts must be gone when it ends."""
    before = _descendants()
    yield
    try:
        wait_until(
            lambda: not (_descendants() - before), timeout=15, what="child processes to exit"
        )
    except AssertionError:
        left = [psutil.Process(pid) for pid in _descendants() - before]
        names = [" ".join(p.cmdline()) for p in left if p.is_running()]
        for p in left:
            p.kill()
        pytest.fail(f"test left processes running: {names}")


@dataclass
class Cluster:
    """A master with one in-process care-taker ('local'); ``run`` executes a tradecraft dict."""

    master: NodeCluster
    caretaker: CareTaker
    tmp: Path

    def run(self, tradecraft: dict[str, Any], **options: Any) -> RunResult:
        options.setdefault("run_dir", self.tmp / f"run-{time.monotonic_ns()}")
        tradecraft = {**tradecraft, "search_path": [str(TESTS), *tradecraft.get("search_path", [])]}
        return Run(
            self.master, tradecraft, RunOptions(**options), QuietDisplay(), lambda: 0
        ).execute()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    zctx = zmq.Context()
    with local_cluster(zctx, root=tmp_path / "runs") as (master, caretaker):
        yield Cluster(master, caretaker, tmp_path)
    open_sockets = [s for s in list(zctx._sockets) if not s.closed]  # type: ignore[attr-defined]
    zctx.destroy(linger=0)
    assert not open_sockets, f"sockets left open: {open_sockets}"


PYTHON = sys.executable

#: What a Python traceback (or the tail of one) looks like in output.
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|^\s*File ".*", line \d+', re.MULTILINE)


def console_script(name: str) -> str:
    """The installed console script ``name`` (next to this interpreter when it is there)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed; run pip install -e '.[test]'"
    return found


def element_processes(run_dir: Path) -> list[psutil.Process]:
    """Element processes of the run in ``run_dir`` (their spec files live there)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "datablox.runtime.process" in cmdline and str(run_dir) in cmdline:
            found.append(proc)
    return found


def assert_no_element_processes(run_dir: Path) -> None:
    """Fail (after killing them) if element processes of ``run_dir`` outlived their run."""
    left = element_processes(run_dir)
    for proc in left:
        proc.kill()
    assert left == [], f"element processes outlived the run: {left}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The chaos tests' totals, for the record."""
    chaos = sys.modules.get("tests.test_chaos") or sys.modules.get("test_chaos")
    totals = getattr(chaos, "TOTALS", None)
    if totals:
        terminalreporter.write_line(
            f"chaos: {totals['runs']} runs, {totals['kills']} kills (kill -9), "
            f"{totals['records']:,} records, {totals['lost']} lost, "
            f"{totals['duplicated']} duplicated"
        )
