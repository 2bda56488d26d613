"""Runs whose elements fail or end their processes while the data flows: the run stops
at once or recovers, and never waits on sources that go on into connections that discard."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import TRACEBACK
from test_hostile_runs import run_cli, topo


def ids(path: Path) -> list[int]:
    return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_an_element_error_stops_an_endless_run_at_once(tmp_path: Path, fusion: str) -> None:
    """The source never ends by itself: only the stop the failure asks for ends the run."""
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=null, rate=5000)\n"
        "    element x = mistake_elements:FailsAt(at=2000)\n"
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        "    src -> x -> out",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", fusion, "--summary-json", "s.json", timeout=120)
    assert done.returncode == 1, done.stderr
    assert "element 'x' port 'in': cannot go on at record 2000" in done.stderr, done.stderr
    # the failing process reports its counters as it fails (before: those of its last
    # report, a second old, often none at all)
    counted = orjson.loads((tmp_path / "s.json").read_bytes())["elements"]
    assert counted["x"]["in"] >= 2000 and counted["src"]["out"] >= 2000, counted
    assert not TRACEBACK.search(done.stderr)
    assert "stopping: element 'x' failed (element error), so the run has failed" in (
        done.stdout + done.stderr
    )
    if fusion == "off":
        got = ids(tmp_path / "out.jsonl")
        # what x had emitted but not yet sent when it raised is not delivered
        assert got == list(range(len(got))) and len(got) <= 2000, "a clean prefix"


@pytest.mark.parametrize(
    ("source", "middle", "says"),
    [
        ("Generate(count=100)", 'FailsInHook(hook="on_end")', "element 'x' port 'in' (on_end)"),
        ("Generate(count=100)", 'FailsInHook(hook="on_finish")', "element 'x' in on_finish"),
        ("mistake_elements:FailsInGenerate(count=100)", None, "element 'src' in generate"),
    ],
)
def test_an_element_error_outside_a_record_names_the_element_and_the_hook(
    tmp_path: Path, source: str, middle: str | None, says: str
) -> None:
    """Before: the error's own text alone, naming neither the element nor where."""
    topo(
        tmp_path / "t.topo",
        f"    element src = {source}\n"
        + (f"    element x = mistake_elements:{middle}\n" if middle else "")
        + "    element out = Count()\n"
        + ("    src -> x -> out" if middle else "    src -> out"),
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", "off", timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"{says}: the end came too soon" in done.stdout + done.stderr, done.stderr
    assert not TRACEBACK.search(done.stderr)


def exits_once_and_is_restored(tmp_path: Path, at: int, code: int, fusion: str) -> str:
    """Generate(4000) → ExitsOnce(at, code) → sink: the exit is a crash, the run is
    restored and the sink holds each record once, in order; what the run printed."""
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=4000, rate=4000)\n"
        "    element x = mistake_elements:ExitsOnce("
        f'at={at}, code={code}, marker="{tmp_path / "exited"}")\n'
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        "    src -> x -> out",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", fusion, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "exited").exists()
    assert f"died with exit code {code} (restart 1/3)" in done.stdout + done.stderr
    assert ids(tmp_path / "out.jsonl") == list(range(4000)), "each record once, in order"
    return done.stdout + done.stderr


@pytest.mark.parametrize("code", [0, 3, 5])
def test_an_element_that_ends_its_process_mid_run_is_a_crash_and_is_restored(
    tmp_path: Path, code: int
) -> None:
    """Exit 0 without finishing (before: a run that never ended) and the small codes the
    runtime once used for itself (before: a start failure, not restarted)."""
    exits_once_and_is_restored(tmp_path, at=3000, code=code, fusion="off")


def test_a_silent_exit_of_the_last_live_process_is_a_crash_and_is_restored(
    tmp_path: Path,
) -> None:
    """Every element in one process, which ends with os._exit(0) at the last record.
    Before: with no other process left, this was "no final report" and a short output."""
    said = exits_once_and_is_restored(tmp_path, at=3999, code=0, fusion="max")
    assert "no final report" not in said


def test_a_thread_an_element_leaves_running_does_not_keep_the_run_alive(tmp_path: Path) -> None:
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=100)\n"
        "    element x = mistake_elements:LeavesThread()\n"
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        "    src -> x -> out",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", "off", timeout=60)
    assert done.returncode == 0, done.stderr
    assert ids(tmp_path / "out.jsonl") == list(range(100))


def test_a_start_that_fails_during_a_restore_is_restored_again(tmp_path: Path) -> None:
    """Before: an exception in on_start while restoring failed the run at once, though a
    crash in the same place was restored again."""
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=4000, rate=4000)\n"
        "    element x = mistake_elements:ExitsOnce("
        f'at=3000, code=1, marker="{tmp_path / "exited"}")\n'
        "    element y = mistake_elements:StartFailsOnceAfter("
        f'marker="{tmp_path / "exited"}", done="{tmp_path / "failed"}")\n'
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        "    src -> x -> y -> out",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", "off", timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "process p1-x (x) died with exit code 1 (restart 1/3)" in said, said
    # y's own message says why, unless its exit reaches the master first
    assert (
        "element 'y' could not start again: RuntimeError: the service is down for a moment" in said
        or "process p2-y (y) died with exit code 83 (restart 1/3)" in said
    ), said
    assert said.count("(restart 1/3); restoring every element") == 2, said
    assert ids(tmp_path / "out.jsonl") == list(range(4000)), "each record once, in order"


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_an_ask_in_on_start_is_a_start_error_that_says_why(tmp_path: Path, fusion: str) -> None:
    """Before: it waited out the ask's timeout (or the start-up timeout, naming nobody)."""
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=10)\n"
        "    element a = mistake_elements:AsksAtStart()\n"
        "    element d = mistake_elements:Doubler()\n"
        "    element out = Count()\n"
        "    src -> a -> out\n    a.ask ?> d.get",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", fusion, "--startup-timeout", "5")
    assert done.returncode == 1, done.stderr
    assert (
        "element 'a' could not start: it asked on 'ask' in on_start, before the "
        "other elements answer queries" in done.stderr
    ), done.stderr
    assert not TRACEBACK.search(done.stderr)


def test_emit_to_a_negative_connection_is_an_error_not_the_last_one(tmp_path: Path) -> None:
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=10)\n"
        "    element a = mistake_elements:EmitsToMinusOne()\n"
        "    element out = Count()\n"
        "    src -> a -> out",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", "off")
    assert done.returncode == 1, done.stderr
    assert "element 'a' emitted to connection -1 of 'out', which has 1 connection(s)" in (
        done.stderr
    ), done.stderr


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_an_on_record_that_returns_its_record_is_warned_about_once(
    tmp_path: Path, fusion: str
) -> None:
    """Before: every record vanished without a word (exit 0, empty output)."""
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=3000)\n"
        "    element x = mistake_elements:ReturnsRecord()\n"
        "    element out = Count()\n"
        "    src -> x -> out",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", fusion, "--summary-json", "s.json", timeout=120)
    assert done.returncode == 0, done.stderr
    said = "element 'x' port 'in': on_record returned a value, which is ignored"
    assert said in done.stdout + done.stderr, done.stderr
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert len(summary["warnings"]) == 1 and summary["warnings"][0].startswith(said)
    assert summary["elements"]["out"]["in"] == 0
