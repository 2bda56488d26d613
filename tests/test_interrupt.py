"""Ctrl-C on `datablox-master run`: the first stops sources and drains, a second kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import TRACEBACK, console_script, element_processes, wait_until

ENDLESS = """
topology endless {
    element src = Generate(count=null, rate=20000)
    element out = JsonLinesSink(path="out/x.jsonl")
    src -> out
}
"""

# A sink that writes like JsonLinesSink but takes far longer to flush at the
# end than any test waits: only a second Ctrl-C ends the run.
STUCK_MODULE = '''
"""A sink whose on_finish does not return for minutes."""

import os
import time

import orjson

from datablox import Element, push_in


class StuckOnFinish(Element):
    """Writes records to out/x.jsonl; on_finish blocks. Ports: in."""

    ports = (push_in("in"),)

    def on_start(self, params):
        os.makedirs("out", exist_ok=True)
        self.fh = open("out/x.jsonl", "wb")

    def on_batch(self, port, records):
        self.fh.write(b"".join(orjson.dumps(r) + b"\\n" for r in records))
        self.fh.flush()

    def on_finish(self):
        time.sleep(300)
'''

STUCK = """
topology stuck {
    element src = Generate(count=null, rate=20000)
    element out = stuckmod:StuckOnFinish()
    src -> out
}
"""


def written(proc: subprocess.Popen[str], path: Path, lines: int) -> bool:
    """Whether ``path`` has ``lines`` lines yet; fails at once when the run already ended."""
    assert proc.poll() is None, f"the run ended early with exit code {proc.returncode}"
    try:
        return path.read_bytes().count(b"\n") >= lines
    except FileNotFoundError:
        return False


@contextmanager
def master_run(
    folder: Path, topo: str, fusion: str = "off"
) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """Start `datablox-master run` on ``topo`` in ``folder``; kill whatever is left at the end."""
    run_dir = (folder / "run").resolve()
    summary = folder / "summary.json"
    stderr = open(folder / "stderr.txt", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            console_script("datablox-master"),
            "run",
            topo,
            "--fusion",
            fusion,
            "--display",
            "plain",
            "--run-dir",
            str(run_dir),
            "--summary-json",
            str(summary),
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        yield proc, run_dir, summary
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        stderr.close()
        for left in element_processes(run_dir):
            left.kill()


@pytest.mark.parametrize(("fusion", "processes"), [("off", 2), ("max", 1)])
def test_ctrl_c_stops_the_source_drains_every_queue_and_exits_130(
    tmp_path: Path, fusion: str, processes: int
) -> None:
    (tmp_path / "endless.topo").write_text(ENDLESS)
    out = tmp_path / "out" / "x.jsonl"
    with master_run(tmp_path, "endless.topo", fusion) as (proc, run_dir, summary):
        wait_until(lambda: written(proc, out, 2000), timeout=30, what="the sink to write")
        wait_until(
            lambda: len(element_processes(run_dir)) == processes,
            timeout=10,
            what="the element processes",
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        stderr = (tmp_path / "stderr.txt").read_text()

        figures = json.loads(summary.read_text())
        assert figures["interrupted"] is True
        assert figures["exit_code"] == 130
        assert figures["problems"] == [] and figures["lost"] == []
        emitted = figures["elements"]["src"]["out"]
        assert emitted >= 2000
        assert figures["elements"]["out"]["in"] == emitted
        # complete lines, every record once, in order
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert out.read_bytes().endswith(b"\n")
        assert [r["id"] for r in records] == list(range(emitted))
        assert {p["exit"] for p in figures["processes"].values()} == {"finished"}
        assert "stopping: sources stop, queues drain" in stderr
        assert not TRACEBACK.search(stderr), stderr
        assert element_processes(run_dir) == []


def test_a_second_ctrl_c_kills_every_element_process(tmp_path: Path) -> None:
    (tmp_path / "stuck.topo").write_text(STUCK)
    (tmp_path / "stuckmod.py").write_text(STUCK_MODULE)
    out = tmp_path / "out" / "x.jsonl"
    with master_run(tmp_path, "stuck.topo") as (proc, run_dir, summary):
        wait_until(lambda: written(proc, out, 1000), timeout=30, what="the sink to write")
        proc.send_signal(signal.SIGINT)
        wait_until(
            lambda: "stopping:" in (tmp_path / "stderr.txt").read_text(),
            timeout=10,
            what="the master to begin stopping",
        )
        # the sink is stuck in on_finish; only the second Ctrl-C can end the run
        wait_until(
            lambda: len(element_processes(run_dir)) == 1,
            timeout=10,
            what="the source process to finish",
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        stderr = (tmp_path / "stderr.txt").read_text()
        assert "killing every element process" in stderr
        assert not TRACEBACK.search(stderr), stderr
        figures = json.loads(summary.read_text())
        assert figures["interrupted"] is True and figures["exit_code"] == 130
        assert figures["processes"]["p1-out"]["exit"] == "killed"
        assert figures["processes"]["p0-src"]["exit"] == "finished"
        assert element_processes(run_dir) == []


SLOW = """
topology slow {
    element src = %s
    element out = JsonLinesSink(path="out/x.jsonl")
    src -> out
}
"""


@pytest.mark.parametrize("fusion", ["off", "max"])
@pytest.mark.parametrize(
    "source", ["Generate(count=null, rate=0.1)", 'JsonLinesSource(path="in.jsonl", rate=0.1)']
)
def test_ctrl_c_stops_a_slowly_paced_source_at_once(
    tmp_path: Path, fusion: str, source: str
) -> None:
    """A source paced at one record per 10 s stops at Ctrl-C without emitting again.
    Generate used to spin in its pacing loop until its next record was due, and emit
    it; JsonLinesSource emitted the record it was waiting for at once."""
    (tmp_path / "in.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(5)))
    (tmp_path / "slow.topo").write_text(SLOW % source)
    out = tmp_path / "out" / "x.jsonl"
    with master_run(tmp_path, "slow.topo", fusion) as (proc, run_dir, summary):
        wait_until(lambda: written(proc, out, 1), timeout=30, what="the first record")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(8) == 130  # the next record would be due 10 s after the first
        figures = json.loads(summary.read_text())
        assert figures["elements"]["src"]["out"] == 1
        assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [0]
        assert element_processes(run_dir) == []


# A pass-through element that crashes once, at record 15000 (after a checkpoint), and then
# takes a while to start again: the Ctrl-C below lands while the run restores.
SLOW_RESTART_MODULE = '''
"""Crashes once; its restart is slow on purpose."""

import os
import time

from datablox import Element, push_in, push_out


class SlowRestart(Element):
    ports = (push_in("in"), push_out("out"))

    def on_start(self, params):
        if os.path.exists("crashed"):
            time.sleep(3)  # slow on purpose: the restore is under way meanwhile

    def on_record(self, port, record):
        if record["id"] == 15000 and not os.path.exists("crashed"):
            open("crashed", "w").close()
            os._exit(1)
        self.emit(record)
'''

SLOW_RESTART = """
topology slow {
    element src = Generate(count=null, rate=10000)
    element mid = slowmod:SlowRestart()
    element out = JsonLinesSink(path="out/x.jsonl")
    src -> mid -> out
}
"""


def test_a_ctrl_c_during_a_restore_drains_once_the_restore_is_done(tmp_path: Path) -> None:
    """Before: a Ctrl-C while the run restored killed every process."""
    (tmp_path / "slow.topo").write_text(SLOW_RESTART)
    (tmp_path / "slowmod.py").write_text(SLOW_RESTART_MODULE)
    out = tmp_path / "out" / "x.jsonl"
    log = tmp_path / "stderr.txt"
    with master_run(tmp_path, "slow.topo") as (proc, run_dir, summary):
        wait_until(
            lambda: "restoring every element" in log.read_text(),
            timeout=60,
            what="the restore to begin",
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        stderr = log.read_text()
        assert "a restore is under way: the run stops once it is done" in stderr, stderr
        assert "stopping: the restore is done; sources stop, queues drain" in stderr, stderr
        assert "killing" not in stderr, stderr
        figures = json.loads(summary.read_text())
        assert figures["problems"] == [], figures["problems"]
        emitted = figures["elements"]["src"]["out"]
        assert emitted >= 5000, "restored from a checkpoint after the start"
        # every record once, in order: the restore replayed from the checkpoint
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert ids == list(range(emitted))
        assert element_processes(run_dir) == []
