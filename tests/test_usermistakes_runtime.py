"""Regression tests for what a new user broke at run time (big integers, query errors,
push + query loops, start failures, earlier outputs, fusion-dependent results,
orphans, busy versus blocked)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

import datablox
from datablox.errors import RunError
from datablox.runtime.handling import dead_letter_line
from datablox.testing import chain
from tests.conftest import TESTS, Cluster, console_script, wait_until

FUSIONS = ["off", "max"]


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def dead_letters(run_dir: Path, element: str) -> list[dict[str, Any]]:
    return lines(run_dir / "deadletter" / f"{element}.jsonl")


# ---- 1. big integers --------------------------------------------------------
@pytest.mark.parametrize("fusion", FUSIONS)
def test_records_with_big_integers_go_to_dead_letters_with_the_reason(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    tc = chain(
        "big",
        [
            ("src", "mistake_elements:BigInt", {"count": 1000, "every": 10}),
            ("relay", "mistake_elements:Relay", {}),
            ("sink", "JsonLinesSink", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion=fusion, run_dir=run_dir)
    assert result.exit_code == 0, result.problems
    assert sorted(r["n"] for r in lines(out)) == [i for i in range(1000) if i % 10]
    dead = dead_letters(run_dir, "src") + dead_letters(run_dir, "relay")
    assert sorted(d["record"]["n"] for d in dead) == list(range(0, 1000, 10))
    assert all("64" in d["error"] and "orjson" in d["error"] for d in dead), dead[0]
    # the dead letter shows the big integer itself, as text
    assert dead[0]["record"]["big"] == str(2**70 + dead[0]["record"]["n"])
    assert result.state.lost() == []


def test_the_dead_letter_writer_cannot_fail_on_a_record() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    deep: Any = 0
    for _ in range(5000):
        deep = [deep]
    for record in ({"big": 2**70}, {"deep": deep}, Unprintable(), {"x": {1, 2}}, {"f": math.nan}):
        line = dead_letter_line({"element": "e", "error": "boom", "record": record})
        entry = orjson.loads(line)
        assert entry["element"] == "e" and entry["error"] == "boom"


# ---- 2. query errors ---------------------------------------------------------
def _ask_topology(strict: bool) -> dict[str, Any]:
    tc = chain(
        "ask",
        [
            ("src", "runtime_elements:Numbers", {"count": 2000}),
            ("asker", "mistake_elements:AskEach", {"strict": strict}),
            ("sink", "Count", {}),
        ],
    )
    tc["elements"].append(
        {
            "id": 3,
            "name": "table",
            "class": "mistake_elements:Doubler",
            "params": {"refuse_every": 100},
            "node": None,
            "shard": None,
        }
    )
    tc["connections"].append(
        {
            "id": 2,
            "kind": "query",
            "from": {"element": "asker", "port": "ask"},
            "to": {"element": "table", "port": "get"},
        }
    )
    return tc


@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_failed_ask_sends_the_record_to_dead_letters_and_the_element_goes_on(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    run_dir = tmp_path / "run"
    result = cluster.run(_ask_topology(strict=False), fusion=fusion, run_dir=run_dir)
    assert result.exit_code == 0, result.problems
    summary = result.summary()["elements"]
    assert summary["sink"]["in"] == 1980
    assert summary["asker"]["dead"] == 20
    dead = dead_letters(run_dir, "asker")
    assert sorted(d["record"]["n"] for d in dead) == list(range(0, 2000, 100))
    assert "QueryError" in dead[0]["error"] and "no double for" in dead[0]["error"]
    assert result.state.lost() == []


@pytest.mark.parametrize("fusion", FUSIONS)
def test_an_element_may_fail_the_run_on_a_query_error_explicitly(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    result = cluster.run(_ask_topology(strict=True), fusion=fusion)
    assert result.exit_code == 1
    assert any("the lookup failed" in p and "asker" in p for p in result.problems), result.problems


# ---- 3. push + query loops ---------------------------------------------------
@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_source_that_answers_its_own_consumer_finishes(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "loop",
        [
            ("src", "mistake_elements:NumbersAndAnswers", {"count": 50000}),
            ("asker", "mistake_elements:AskEach", {"timeout": 60.0}),
            ("sink", "JsonLinesSink", {"path": str(out)}),
        ],
    )
    tc["connections"].append(
        {
            "id": 2,
            "kind": "query",
            "from": {"element": "asker", "port": "ask"},
            "to": {"element": "src", "port": "get"},
        }
    )
    # small queues, so the source is blocked on its push queue most of the run
    result = cluster.run(tc, fusion=fusion, hwm=1, batch_size=64)
    assert result.exit_code == 0, result.problems
    got = lines(out)
    assert len(got) == 50000
    assert all(r["double"] == 2 * r["n"] for r in got)
    assert result.summary()["elements"]["asker"]["dead"] == 0


# ---- 4. start failures and options ------------------------------------------
def test_a_start_failure_ends_the_run_at_once_naming_the_element(
    cluster: Cluster, tmp_path: Path
) -> None:
    tc = chain(
        "exit",
        [
            ("src", "Generate", {"count": 10}),
            ("bad", "mistake_elements:ExitAtStart", {"code": 3}),
        ],
    )
    started = time.monotonic()
    result = cluster.run(tc, fusion="off", startup_timeout=60.0)
    took = time.monotonic() - started
    assert result.exit_code == 1
    assert result.problems == [
        "element 'bad' could not start: its process ended with exit code 3 during start-up"
    ]
    assert took < 30, f"the run waited {took:.0f} s for a start-up that had already failed"


@pytest.mark.parametrize(
    ("option", "value", "text"),
    [
        ("batch_size", 0, "batch_size= must be a whole number of at least 1, got 0"),
        ("batch_size", -5, "batch_size= must be a whole number of at least 1, got -5"),
        ("flush_ms", -1, "flush_ms= must be 0 or more, got -1"),
        ("slots", 0, "slots= must be a whole number of at least 1, got 0"),
        ("max_restarts", -1, "max_restarts= must be a whole number of at least 0, got -1"),
        ("hwm", -1, "hwm= must be a whole number of at least 1, got -1"),
        ("startup_timeout", 0, "startup_timeout= must be more than 0, got 0"),
        ("batch_size", 2**70, f"batch_size= must be at most 1,000,000, got {2**70:,}"),
        ("hwm", 10**10, "hwm= must be at most 1,000,000, got 10,000,000,000"),
        ("max_restarts", 2**64, f"max_restarts= must be at most {2**62:,}, got {2**64:,}"),
    ],
)
def test_options_are_checked_before_anything_starts(
    tmp_path: Path, option: str, value: Any, text: str
) -> None:
    tc = chain("opts", [("src", "Generate", {"count": 10}), ("sink", "Null", {})])
    with pytest.raises(RunError) as caught:
        datablox.run(tc, run_dir=tmp_path / "run", **{option: value})
    assert str(caught.value) == text
    assert not (tmp_path / "run").exists()


def test_cli_rejects_a_bad_option_with_a_message(tmp_path: Path) -> None:
    topo = tmp_path / "t.topo"
    topo.write_text(
        "topology t {\n    element src = Generate(count=10)\n    element n = Null()\n"
        "    src -> n\n}\n"
    )
    done = subprocess.run(
        [console_script("datablox-master"), "run", str(topo), "--hwm", "-1", "--display", "quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--hwm must be a whole number of at least 1, got -1" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unwritable_run_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    tc = chain("rd", [("src", "Generate", {"count": 10}), ("sink", "Null", {})])
    with pytest.raises(RunError, match=r"cannot use .* as the run folder"):
        datablox.run(tc, run_dir=blocker / "run")


def test_run_accepts_a_run_dir_given_as_a_string(tmp_path: Path) -> None:
    tc = chain("rd", [("src", "Generate", {"count": 10}), ("sink", "Null", {})])
    result = datablox.run(tc, run_dir=str(tmp_path / "run"))
    assert result.exit_code == 0 and result.run_dir == tmp_path / "run"


# ---- 5. earlier outputs --------------------------------------------------------
def test_a_run_that_fails_to_start_leaves_the_previous_output_alone(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"kept": 1}\n' * 100)
    tc = chain(
        "keep",
        [
            ("src", "Generate", {"count": 10}),
            ("out", "JsonLinesSink", {"path": str(out)}),
        ],
    )
    tc["elements"].append(
        {
            "id": 2,
            "name": "bad",
            "class": "mistake_elements:ExitAtStart",
            "params": {},
            "node": None,
            "shard": None,
        }
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 1
    assert out.read_text() == '{"kept": 1}\n' * 100


def test_a_sink_path_below_a_file_is_a_clear_start_error(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    tc = chain(
        "below",
        [
            ("src", "Generate", {"count": 10}),
            ("out", "JsonLinesSink", {"path": str(tmp_path / "file" / "out.jsonl")}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 1
    [problem] = result.problems
    assert problem.startswith(
        f"element 'out' could not start: ParameterError: JsonLinesSink: cannot write "
        f"'{tmp_path / 'file' / 'out.jsonl'}': '{tmp_path / 'file'}' is a file, not a folder"
    )
    assert "FileExistsError" not in problem


# ---- 6. the same results in every fusion mode and codec ------------------------
@pytest.mark.parametrize("codec", ["orjson", "ujson", "msgpack"])
def test_awkward_values_give_the_same_outputs_in_every_fusion_mode(
    cluster: Cluster, tmp_path: Path, codec: str
) -> None:
    outcomes = {}
    for fusion in ("off", "max"):
        out = tmp_path / f"{fusion}.jsonl"
        run_dir = tmp_path / f"run-{fusion}"
        tc = chain(
            "awkward",
            [
                ("src", "mistake_elements:Awkward", {"repeat": 3}),
                ("relay", "mistake_elements:Relay", {}),
                ("keep", "Filter", {"where": "i >= 0"}),
                ("sink", "JsonLinesSink", {"path": str(out)}),
            ],
        )
        result = cluster.run(tc, fusion=fusion, codec=codec, run_dir=run_dir)
        assert result.exit_code == 0, result.problems
        written = sorted(out.read_bytes().splitlines())
        dead = sorted(
            (name, d["record"]["kind"] if isinstance(d["record"], dict) else "?")
            for name in ("src", "relay", "keep", "sink")
            for d in dead_letters(run_dir, name)
        )
        outcomes[fusion] = (written, dead)
    assert outcomes["off"] == outcomes["max"]
    written, dead = outcomes["off"]
    kinds = {orjson.loads(line)["kind"] for line in written}
    refused = {kind for _, kind in dead}
    assert kinds | refused == {
        "plain", "int_keys", "big_int", "nan", "inf", "bytes", "datetime", "tuple", "set", "deep"
    }  # fmt: skip
    assert "plain" in kinds and "tuple" in kinds and "set" in refused
    if codec == "orjson":
        assert refused == {"big_int", "bytes", "set", "deep"}
        by_kind = {orjson.loads(line)["kind"]: orjson.loads(line)["value"] for line in written}
        assert by_kind["int_keys"] == {"1": "a", "2": "b"}
        assert by_kind["nan"] is None and by_kind["datetime"] == "2026-01-02T03:04:05"


@pytest.mark.parametrize("plain", [False, True])
def test_a_map_declared_plain_is_handed_on_fused_without_the_copy(
    cluster: Cluster, tmp_path: Path, plain: bool
) -> None:
    """Fused, a Map's records are copied through the codec, so the next element sees
    a tuple as a list, as it would in its own process; declared ``plain``, they go on
    as they are (the promise is the user's), so here, where it is broken, it shows."""
    seen = {}
    for fusion in ("off", "max"):
        out = tmp_path / f"{fusion}-{plain}.txt"
        tc = chain(
            "plain_map",
            [
                ("src", "Generate", {"count": 50}),
                ("map", "Map", {"fn": "mistake_elements:with_tuple", "plain": plain}),
                ("types", "mistake_elements:TypeNames", {"path": str(out)}),
            ],
        )
        result = cluster.run(tc, fusion=fusion)
        assert result.exit_code == 0, result.problems
        seen[fusion] = set(out.read_text().split())
    assert seen["off"] == {"list"}
    assert seen["max"] == ({"tuple"} if plain else {"list"})


# ---- 7. orphans ---------------------------------------------------------------
def test_no_element_outlives_a_killed_master(tmp_path: Path) -> None:
    marker = tmp_path / "stuck.pid"
    topo = tmp_path / "stuck.topo"
    topo.write_text(
        "topology stuck {\n"
        "    element src = Generate(count=10)\n"
        f'    element stuck = mistake_elements:StuckAtFinish(marker="{marker}")\n'
        "    src -> stuck\n}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    master = subprocess.Popen(
        [console_script("datablox-master"), "run", str(topo), "--fusion", "off"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: marker.exists() and marker.read_text(), timeout=60, what="on_finish")
        pid = int(marker.read_text())
        os.kill(master.pid, signal.SIGKILL)
        master.wait(10)

        def gone() -> bool:
            try:
                return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_until(gone, timeout=5, what="the stuck element process to exit")
    finally:
        if master.poll() is None:
            master.kill()
            master.wait(10)
        for proc in psutil.process_iter(["cmdline"]):
            if str(tmp_path) in " ".join(proc.info["cmdline"] or []):
                proc.kill()


# ---- 10. busy versus blocked ------------------------------------------------------
def test_a_source_feeding_a_slow_sink_is_blocked_not_busy(cluster: Cluster, tmp_path: Path) -> None:
    tc = chain(
        "slow",
        [
            ("src", "Generate", {"count": 200000}),
            ("sink", "runtime_elements:Collect", {"path": str(tmp_path / "o"), "delay": 0.015}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 0, result.problems
    src = result.summary()["elements"]["src"]
    assert src["blocked_seconds"] > 3 * src["busy_seconds"], src
    assert src["blocked"] > src["busy"]
    # a source never waits for input: until it finished, it was working or blocked
    assert src["idle"] < 0.2, src
    sink = result.summary()["elements"]["sink"]
    assert sink["busy"] > 0.5, sink


def test_the_table_shows_dead_letters(tmp_path: Path) -> None:
    topo = tmp_path / "dead.topo"
    topo.write_text(
        "topology dead {\n"
        "    element src = Generate(count=1000)\n"
        '    element keep = Filter(where="key > 1")\n'
        "    element n = Null()\n"
        "    src -> keep -> n\n}\n"
    )
    done = subprocess.run(
        [console_script("datablox-master"), "run", str(topo), "--display", "plain"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stderr.splitlines() if "element" in line and "dead" in line)
    assert "busy" in header and "blocked" in header and "idle" in header
    row = next(line for line in done.stderr.splitlines() if line.startswith("│ keep "))
    columns = [cell.strip() for cell in header.split("┃")]
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[columns.index("dead")] == "1,000", row


# ---- 11. user modules named like datablox's own packages --------------------------
def test_user_modules_named_elements_master_and_dsl_do_not_shadow_datablox(tmp_path: Path) -> None:
    (tmp_path / "elements.py").write_text(
        "from datablox import Element, push_in, push_out\n\n\n"
        "class Tag(Element):\n"
        '    ports = (push_in("in"), push_out("out"))\n\n'
        "    def on_record(self, port, record):\n"
        '        record["tag"] = "mine"\n'
        "        self.emit(record)\n"
    )
    (tmp_path / "master.py").write_text(
        "raise ImportError('the user module master was imported')\n"
    )
    (tmp_path / "dsl.py").write_text("raise ImportError('the user module dsl was imported')\n")
    (tmp_path / "t.topo").write_text(
        "topology t {\n"
        "    element src = Generate(count=100)\n"
        "    element tag = elements:Tag()\n"
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        "    src -> tag -> out\n}\n"
    )
    cli = console_script("datablox-master")
    checked = subprocess.run([cli, "check", "t.topo"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    for fusion in FUSIONS:
        done = subprocess.run(
            [cli, "run", "t.topo", "--fusion", fusion, "--display", "quiet"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        got = lines(tmp_path / "out.jsonl")
        assert len(got) == 100 and {r["tag"] for r in got} == {"mine"}


# ---- 12. byte order marks in data files --------------------------------------------
def test_csv_and_json_lines_with_a_byte_order_mark_read_cleanly(tmp_path: Path) -> None:
    from datablox.testing import ElementHarness

    csv = tmp_path / "bom.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,name\r\n1,a\r\n")
    assert ElementHarness("CsvSource", {"path": str(csv)}).run_source() == [
        {"id": "1", "name": "a"}
    ]
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"id": 1}\n{"id": 2}\n')
    h = ElementHarness("JsonLinesSource", {"path": str(jsonl)})
    assert h.run_source() == [{"id": 1}, {"id": 2}]
    assert h.dead_letters == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
