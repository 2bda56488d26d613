"""Runs a new user broke in ways the first round of fixes did not cover: long names, a
process its care-taker cannot start, a stop stuck in user code, shared run folders."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from conftest import TESTS, Cluster, assert_no_element_processes, console_script, wait_until

from datablox.filenames import MAX_STEM, file_stem
from datablox.testing import chain

LONG_SRC = "s" * 300
LONG_FILTER = "f" * 300


def topo(path: Path, body: str, name: str = "t") -> Path:
    path.write_text(f"topology {name} {{\n{body}\n}}\n")
    return path


def run_cli(folder: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("datablox-master"), "run", *args, "--display", "plain"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )


def test_a_long_name_gives_a_short_file_stem_unique_to_it() -> None:
    assert file_stem("keep") == "keep"
    assert file_stem("group/keep") == "group__keep"
    a, b = file_stem("x" * 300 + "a"), file_stem("x" * 300 + "b")
    assert a != b and len(a.encode()) <= MAX_STEM and len(b.encode()) <= MAX_STEM
    assert file_stem("x" * 300 + "a") == a, "the same name always gives the same file"


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_elements_with_very_long_names_run_and_keep_their_dead_letters(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    tc = chain(
        "long",
        [
            (LONG_SRC, "Generate", {"count": 1000}),
            (LONG_FILTER, "Filter", {"where": "key > 1"}),  # str > int: every record is dead
            ("sink", "Null", {}),
        ],
    )
    run_dir = tmp_path / "rd"
    result = cluster.run(tc, fusion=fusion, run_dir=run_dir)
    assert result.exit_code == 0, result.problems
    assert result.summary()["elements"][LONG_FILTER]["dead"] == 1000
    files = list((run_dir / "deadletter").iterdir())
    assert [f.name for f in files] == [f"{file_stem(LONG_FILTER)}.jsonl"]
    assert len(files[0].read_text().splitlines()) == 1000
    assert all(len(p.name.encode()) <= 255 for p in run_dir.rglob("*"))


def test_a_process_its_caretaker_cannot_start_ends_the_run_at_once(tmp_path: Path) -> None:
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=10)\n    element n = Null()\n    src -> n",
    )
    run_dir = tmp_path / "rd"
    run_dir.mkdir()
    (run_dir / "specs").write_text("a file where the spec folder goes")
    started = time.monotonic()
    done = run_cli(tmp_path, "t.topo", "--run-dir", str(run_dir))
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 30, "the run waited for processes that never ran"
    assert "could not start: the care-taker could not start its process" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_element_processes(run_dir)


@contextmanager
def started(folder: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``datablox-master run ARGS`` in ``folder``, running; killed at the end if it still is."""
    proc = subprocess.Popen(
        [console_script("datablox-master"), "run", *args, "--display", "plain"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    """Send ``sig`` once; the run's stderr once it has ended."""
    proc.send_signal(sig)
    return proc.communicate(timeout=30)[1]


def stuck_topo(folder: Path) -> Path:
    """``stuck.topo``: its sink never returns from on_record; returns the marker it writes."""
    marker = folder / "stuck.pid"
    topo(
        folder / "stuck.topo",
        "    element src = Generate(count=100000)\n"
        f'    element stuck = mistake_elements:StuckOnRecord(marker="{marker}")\n'
        "    src -> stuck",
    )
    return marker


def test_a_stop_that_cannot_drain_kills_everything_after_the_drain_timeout(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "rd"
    marker = stuck_topo(tmp_path)
    with started(tmp_path, "stuck.topo", "--run-dir", str(run_dir), "--drain-timeout", "2") as run:
        wait_until(marker.exists, timeout=60, what="the element to be stuck in on_record")
        err = stop(run, signal.SIGTERM)  # once, as a service manager does
    assert run.returncode == 130, err
    assert "the stop did not drain within 2 s" in err
    assert "unfinished: " in err and "stuck" in err
    assert "Traceback" not in err
    assert_no_element_processes(run_dir)


def test_two_runs_cannot_share_a_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "rd"
    marker = stuck_topo(tmp_path)
    with started(
        tmp_path, "stuck.topo", "--run-dir", str(run_dir), "--drain-timeout", "1"
    ) as first:
        wait_until(marker.exists, timeout=60, what="the first run to be running")
        second = run_cli(tmp_path, "stuck.topo", "--run-dir", str(run_dir), timeout=60)
        assert second.returncode != 0
        assert f"the run folder {run_dir} is in use by another run" in second.stderr
        assert "Traceback" not in second.stderr
        stop(first)
    assert first.returncode == 130
    assert_no_element_processes(run_dir)


def test_a_reused_run_folder_does_not_keep_an_earlier_runs_dead_letters(tmp_path: Path) -> None:
    run_dir = tmp_path / "rd"
    body = (
        '    element src = Generate(count=100)\n    element keep = Filter(where="{}")\n'
        "    element n = Null()\n    src -> keep -> n"
    )
    topo(tmp_path / "bad.topo", body.format("key > 1"))
    topo(tmp_path / "good.topo", body.format("value > 0.5"))
    bad = run_cli(tmp_path, "bad.topo", "--run-dir", str(run_dir))
    assert bad.returncode == 0, bad.stderr
    assert len((run_dir / "deadletter" / "keep.jsonl").read_text().splitlines()) == 100
    good = run_cli(tmp_path, "good.topo", "--run-dir", str(run_dir))
    assert good.returncode == 0, good.stderr
    assert not (run_dir / "deadletter" / "keep.jsonl").exists()


@pytest.mark.parametrize("fusion", ["off", "max"])
@pytest.mark.parametrize(
    ("cls", "says"),
    [
        ("UnpicklableState", "element 'x': snapshot() returned a state that cannot be pickled"),
        ("RaisesKeyboardInterrupt", "element code raised KeyboardInterrupt"),
    ],
)
def test_user_code_that_breaks_the_process_gets_a_message_not_a_traceback(
    tmp_path: Path, fusion: str, cls: str, says: str
) -> None:
    topo(
        tmp_path / "t.topo",
        "    element src = Generate(count=100)\n"
        f"    element x = mistake_elements:{cls}()\n"
        "    element n = Null()\n"
        "    src -> x -> n",
    )
    done = run_cli(tmp_path, "t.topo", "--fusion", fusion, "--run-dir", str(tmp_path / "rd"))
    assert done.returncode == 1, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr and 'File "' not in done.stderr, done.stderr
    assert_no_element_processes(tmp_path / "rd")


def test_check_refuses_two_elements_writing_one_file(tmp_path: Path) -> None:
    topo(
        tmp_path / "d.topo",
        "    element a = Generate(count=10)\n"
        "    element b = Generate(count=10)\n"
        '    element wa = JsonLinesSink(path="out/same.jsonl")\n'
        '    element wb = JsonLinesSink(path="out/../out/same.jsonl")\n'
        "    a -> wa\n"
        "    b -> wb",
    )
    done = subprocess.run(
        [console_script("datablox-master"), "check", "d.topo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "element 'wb' writes '" in done.stderr
    assert "out/../out/same.jsonl', which element 'wa' writes too" in done.stderr
    assert "d.topo:5:" in done.stderr, "points at the second writer's path"
    assert not (tmp_path / "out").exists()


def test_a_second_run_cannot_write_a_file_another_run_is_writing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    topo(
        tmp_path / "slow.topo",
        "    element src = Generate(count=10000, rate=100)\n"
        f'    element w = JsonLinesSink(path="{out}")\n'
        "    src -> w",
    )
    topo(
        tmp_path / "fast.topo",
        "    element src = Generate(count=1000, seed=9)\n"
        f'    element w = JsonLinesSink(path="{out}")\n'
        "    src -> w",
    )
    with started(tmp_path, "slow.topo", "--run-dir", str(tmp_path / "rd1")) as first:
        wait_until(lambda: out.exists() and out.stat().st_size > 0, timeout=60, what="output")
        second = run_cli(tmp_path, "fast.topo", "--run-dir", str(tmp_path / "rd2"))
        assert second.returncode == 1, second.stderr
        assert f"{out} is being written by another element or run" in second.stderr
        assert "Traceback" not in second.stderr
        stop(first)
    assert first.returncode == 130
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    ids = [r["id"] for r in lines]
    assert ids == list(range(len(ids))), "only the first run's records, each whole, in order"


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_a_record_that_is_not_a_map_is_blamed_on_its_sender(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    tc = chain(
        "notmaps",
        [
            ("src", "Generate", {"count": 10}),
            ("odd", "mistake_elements:EmitsNotMaps", {}),
            ("keep", "Filter", {"where": "id >= 0"}),
            ("n", "Null", {}),
        ],
    )
    run_dir = tmp_path / "rd"
    result = cluster.run(tc, fusion=fusion, run_dir=run_dir)
    assert result.exit_code == 0, result.problems
    elements = result.summary()["elements"]
    assert elements["n"]["in"] == 10 and elements["keep"]["dead"] == 20
    dead = [orjson.loads(line) for line in (run_dir / "deadletter" / "keep.jsonl").open("rb")]
    assert sorted(str(d["record"]) for d in dead) == sorted(["[1, 2]", "5"] * 10)
    assert all(
        d["error"].startswith(
            f"the record is a {type(d['record']).__name__}, not a map: the element that "
            "sends to 'in' emitted it"
        )
        for d in dead
    ), dead[:2]


def test_a_join_dataset_whose_csv_header_repeats_a_column_fails_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "ds.csv").write_text("code,name,code\nk1,a,x\n")
    topo(
        tmp_path / "j.topo",
        "    element src = Generate(count=20)\n"
        '    element geo = Join(key="key", dataset_key="code", path="ds.csv")\n'
        "    element out = Null()\n"
        "    src -> geo -> out",
    )
    done = run_cli(tmp_path, "j.topo", "--run-dir", str(tmp_path / "rd"))
    assert done.returncode == 1, done.stderr
    assert "names a column more than once: 'code' (columns 1 and 3)" in done.stderr
    assert "Traceback" not in done.stderr


def dead_topo(folder: Path, count: int) -> Path:
    """Every record of ``count`` goes to the Filter's dead letters (str > int fails)."""
    return topo(
        folder / "dead.topo",
        f'    element src = Generate(count={count})\n    element keep = Filter(where="key > 1")\n'
        "    element n = Null()\n    src -> keep -> n",
    )


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_a_run_stops_and_fails_once_its_dead_letters_pass_the_limit(
    tmp_path: Path, fusion: str
) -> None:
    total = 20_000_000  # minutes of work: the stop must come long before the end
    dead_topo(tmp_path, total)
    run_dir = tmp_path / "rd"
    done = run_cli(
        tmp_path,
        "dead.topo",
        "--max-dead-letters",
        "1000",
        "--fusion",
        fusion,
        "--run-dir",
        str(run_dir),
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "stopping: more than 1,000 records went to dead letters" in done.stderr
    assert "more than the 1,000 the run allows (--max-dead-letters" in done.stderr
    written = len((run_dir / "deadletter" / "keep.jsonl").read_bytes().splitlines())
    assert 1000 < written < total
    # the summary counts exactly what the dead-letter file holds
    assert f"keep: {written} record(s) in dead letters" in done.stderr


def test_dead_letters_up_to_the_limit_are_allowed(tmp_path: Path) -> None:
    dead_topo(tmp_path, 50)
    at = run_cli(tmp_path, "dead.topo", "--max-dead-letters", "50")
    assert at.returncode == 0, at.stderr
    over = run_cli(tmp_path, "dead.topo", "--max-dead-letters", "49")
    assert over.returncode == 1, over.stderr
    assert "50 records went to dead letters ('keep' 50), more than the 49" in over.stderr
    negative = run_cli(tmp_path, "dead.topo", "--max-dead-letters", "-1")
    assert negative.returncode == 1
    assert "--max-dead-letters must be a whole number of at least 0, got -1" in negative.stderr
