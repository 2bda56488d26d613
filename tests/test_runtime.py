"""Topologies run in real element processes by an in-process master and care-taker."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from datablox.testing import chain
from tests.conftest import Cluster


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_chain_runs_to_the_end_and_outputs_match(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "squares",
        [
            ("src", "runtime_elements:Numbers", {"count": 5000}),
            ("sq", "runtime_elements:Square", {}),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion=fusion)
    assert result.exit_code == 0, result.problems
    got = sorted(lines(out), key=lambda r: r["n"])
    assert got == [{"n": i, "sq": i * i} for i in range(5000)]
    expected_processes = 3 if fusion == "off" else 1
    assert len(result.state.processes) == expected_processes
    assert result.summary()["elements"]["sink"]["in"] == 5000
    assert result.state.lost() == []


def test_a_failing_record_goes_to_dead_letters_and_the_element_goes_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "dead",
        [
            ("src", "runtime_elements:Numbers", {"count": 100}),
            ("sq", "runtime_elements:Square", {"fail_on": 42}),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 0
    assert len(lines(out)) == 99
    dead = lines(result.run_dir / "deadletter" / "sq.jsonl")
    assert dead == [{"element": "sq", "port": "in", "record": {"n": 42}, "error": dead[0]["error"]}]
    assert dead[0]["error"].startswith("ValueError: refusing 42 (at runtime_elements.py:")
    assert result.summary()["elements"]["sq"]["dead"] == 1


def test_a_crashed_element_process_is_restarted(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    marker = tmp_path / "crashed"
    tc = chain(
        "crash",
        [
            ("src", "runtime_elements:Numbers", {"count": 20000, "rate": 10000}),
            ("mid", "runtime_elements:CrashOnce", {"marker": str(marker), "at": 50}),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert marker.exists()
    assert result.exit_code == 0, result.problems
    assert result.summary()["elements"]["mid"]["restarts"] == 1
    assert result.summary()["checkpoints"]["restores"] == 1
    # restored from the last checkpoint and replayed: every record exactly once
    assert sorted(r["n"] for r in lines(out)) == list(range(20000))
    assert result.state.lost() == []
    figures = result.summary()["elements"]
    assert figures["mid"]["in"] == figures["mid"]["out"] == figures["sink"]["in"] == 20000


@pytest.mark.parametrize("code", [3, 5, 0])
def test_an_element_calling_sys_exit_mid_stream_is_a_crash_and_loses_nothing(
    cluster: Cluster, tmp_path: Path, code: int
) -> None:
    """sys.exit(n) in user code must not pass for one of the runtime's exit codes
    (3: start failed, 5: element error, 0: finished), which are not restored."""
    out = tmp_path / "out.jsonl"
    marker = tmp_path / "exited"
    tc = chain(
        "sysexit",
        [
            ("src", "runtime_elements:Numbers", {"count": 20000, "rate": 20000}),
            (
                "mid",
                "runtime_elements:CrashOnce",
                {"marker": str(marker), "at": 7000, "exit": code},
            ),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert marker.exists()
    assert result.exit_code == 0, result.problems
    assert result.summary()["checkpoints"]["restores"] == 1
    assert sorted(r["n"] for r in lines(out)) == list(range(20000))


def test_checkpoints_go_on_after_a_source_process_has_exited(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A finished source's last snapshot stands for the later checkpoints: they complete,
    and a crash after it goes back to one of them, not to the start."""
    out = tmp_path / "out.jsonl"
    tc = {
        "name": "twosources",
        "elements": [
            {
                "name": "short",
                "class": "runtime_elements:Numbers",
                "id": 0,
                "params": {"count": 100, "start": 100000},
            },
            {
                "name": "long",
                "class": "runtime_elements:Numbers",
                "id": 1,
                "params": {"count": 3000, "rate": 1000},
            },
            {
                "name": "sink",
                "class": "runtime_elements:Collect",
                "id": 2,
                "params": {"path": str(out)},
            },
        ],
        "connections": [
            {
                "id": 0,
                "kind": "push",
                "from": {"element": "short", "port": "out"},
                "to": {"element": "sink", "port": "in"},
            },
            {
                "id": 1,
                "kind": "push",
                "from": {"element": "long", "port": "out"},
                "to": {"element": "sink", "port": "in"},
            },
        ],
    }
    result = cluster.run(tc, fusion="off", snapshot_every=0.3)
    assert result.exit_code == 0, result.problems
    assert result.summary()["processes"]["p0-short"]["exit"] == "finished"
    assert result.summary()["checkpoints"]["completed"] >= 4
    want = list(range(3000)) + list(range(100000, 100100))
    assert sorted(r["n"] for r in lines(out)) == want


def test_an_element_that_keeps_crashing_fails_the_run(cluster: Cluster, tmp_path: Path) -> None:
    tc = chain(
        "crashloop",
        [
            ("src", "runtime_elements:Numbers", {"count": 1_000_000}),
            (
                "mid",
                "runtime_elements:CrashOnce",
                {"marker": str(tmp_path / "m"), "at": 5, "always": True},
            ),
            ("sink", "runtime_elements:Collect", {"path": str(tmp_path / "out.jsonl")}),
        ],
    )
    result = cluster.run(tc, fusion="off", max_restarts=2)
    assert result.exit_code == 1
    assert result.summary()["elements"]["mid"]["restarts"] == 2
    assert any("gave up" in p and "mid" in p for p in result.problems), result.problems


def test_a_start_failure_names_the_element(cluster: Cluster, tmp_path: Path) -> None:
    tc = chain(
        "badstart",
        [
            ("src", "runtime_elements:Numbers", {"count": 10}),
            ("bad", "runtime_elements:BadStart", {}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 1
    assert len(result.problems) == 1
    assert result.problems[0].startswith(
        "element 'bad' could not start: FileNotFoundError: catalog.csv is missing "
        "(at runtime_elements.py:"
    )


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_queries_with_many_in_flight(cluster: Cluster, tmp_path: Path, fusion: str) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "ask",
        [
            ("src", "runtime_elements:Numbers", {"count": 3000}),
            ("asker", "runtime_elements:Asker", {}),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    tc["elements"].append(
        {
            "id": 3,
            "name": "table",
            "class": "runtime_elements:Table",
            "params": {},
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
    result = cluster.run(tc, fusion=fusion)
    assert result.exit_code == 0, result.problems
    got = sorted(lines(out), key=lambda r: r["n"])
    assert got == [{"n": i, "double": 2 * i} for i in range(3000)]


def test_backpressure_blocks_the_sender_and_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "slow",
        [
            ("src", "runtime_elements:Numbers", {"count": 20000}),
            ("sink", "runtime_elements:Collect", {"path": str(out), "delay": 0.01}),
        ],
    )
    result = cluster.run(tc, fusion="off", hwm=2, batch_size=64)
    assert result.exit_code == 0
    assert len(lines(out)) == 20000
    assert result.state.lost() == []
    assert result.summary()["elements"]["src"]["blocked_seconds"] > 0


def test_fan_in_finishes_after_every_sender_ended(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "fanin",
        [
            ("a", "runtime_elements:Numbers", {"count": 500}),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    tc["elements"].append(
        {
            "id": 2,
            "name": "b",
            "class": "runtime_elements:Numbers",
            "params": {"count": 700, "start": 10000},
            "node": None,
            "shard": None,
        }
    )
    tc["connections"].append(
        {
            "id": 1,
            "kind": "push",
            "from": {"element": "b", "port": "out"},
            "to": {"element": "sink", "port": "in"},
        }
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 0
    got = sorted(r["n"] for r in lines(out))
    assert got == list(range(500)) + list(range(10000, 10700))


@pytest.mark.parametrize("fusion", ["off", "max"])
def test_fan_out_gives_every_receiver_its_own_records(
    cluster: Cluster, tmp_path: Path, fusion: str
) -> None:
    """Two fused receivers of one out-port may both change records in place."""
    outs = {name: tmp_path / f"{name}.jsonl" for name in ("one", "two")}
    tc = chain("fanout", [("src", "runtime_elements:Numbers", {"count": 1000})])
    for i, name in enumerate(("one", "two")):
        tc["elements"] += [
            {
                "id": 1 + 2 * i,
                "name": name,
                "class": "runtime_elements:Stamp",
                "params": {},
                "node": None,
                "shard": None,
            },
            {
                "id": 2 + 2 * i,
                "name": f"{name}_sink",
                "class": "runtime_elements:Collect",
                "params": {"path": str(outs[name])},
                "node": None,
                "shard": None,
            },
        ]
        tc["connections"] += [
            {
                "id": 2 * i,
                "kind": "push",
                "from": {"element": "src", "port": "out"},
                "to": {"element": name, "port": "in"},
            },
            {
                "id": 2 * i + 1,
                "kind": "push",
                "from": {"element": name, "port": "out"},
                "to": {"element": f"{name}_sink", "port": "in"},
            },
        ]
    tc["fuse"] = [["src", "one", "two", "one_sink", "two_sink"]] if fusion == "max" else []
    result = cluster.run(tc, fusion=fusion)
    assert result.exit_code == 0, result.problems
    for name, path in outs.items():
        got = sorted(lines(path), key=lambda r: r["n"])
        assert got == [{"n": i, "by": name} for i in range(1000)]


def test_a_lone_record_is_flushed_by_the_timer_while_its_source_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Batches are also sent when not full: the source waits for its own record to arrive."""
    marker = str(tmp_path / "seen")
    tc = chain(
        "lone",
        [
            ("src", "runtime_elements:Ping", {"marker": marker}),
            ("sink", "runtime_elements:Touch", {"marker": marker}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 0, result.problems
    assert result.summary()["elements"]["sink"]["in"] == 1


def test_a_record_that_cannot_be_encoded_goes_to_dead_letters(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "codec",
        [
            ("src", "runtime_elements:Numbers", {"count": 10}),
            ("mid", "runtime_elements:Unencodable", {}),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 0, result.problems
    assert sorted(r["n"] for r in lines(out)) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    dead = lines(result.run_dir / "deadletter" / "mid.jsonl")
    assert len(dead) == 1 and dead[0]["port"] == "out"
    assert dead[0]["error"].startswith("CodecError: the record cannot be encoded with orjson")
    assert result.summary()["processes"][result.state.process_of["mid"]]["restarts"] == 0


def test_a_mistake_in_using_datablox_stops_that_element_with_a_clear_error(
    cluster: Cluster, tmp_path: Path
) -> None:
    tc = chain(
        "wrongport",
        [
            ("src", "runtime_elements:Numbers", {"count": 100}),
            ("mid", "runtime_elements:WrongPort", {}),
            ("sink", "runtime_elements:Collect", {"path": str(tmp_path / "out.jsonl")}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 1
    assert result.problems == [
        f"process {result.state.process_of['mid']} (mid) stopped: element 'mid' emitted on "
        "'outt', which is not one of its push out-ports (out)"
    ]
    assert result.summary()["elements"]["mid"]["restarts"] == 0
    assert (tmp_path / "out.jsonl").read_bytes() == b""  # the sink still finished


def test_an_element_class_failing_in_its_constructor_is_a_start_failure(
    cluster: Cluster,
) -> None:
    tc = chain(
        "init",
        [
            ("src", "runtime_elements:Numbers", {"count": 10}),
            ("bad", "runtime_elements:BrokenInit", {}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 1
    assert result.problems[0].startswith(
        "element 'bad' could not start: creating runtime_elements:BrokenInit failed: "
        "RuntimeError: no licence file"
    )


def test_a_restarted_resumable_source_goes_on_where_it_had_reported(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "resume",
        [
            (
                "src",
                "runtime_elements:CrashingSource",
                {"count": 3000, "rate": 1500, "crash_at": 2000, "marker": str(tmp_path / "m")},
            ),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 0, result.problems
    assert result.summary()["elements"]["src"]["restarts"] == 1
    assert sorted(r["n"] for r in lines(out)) == list(range(3000))


def test_a_restarted_source_of_lists_skips_into_the_middle_of_a_list(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resumable source run through ``generate_batches`` whose lists are cut
    differently after a restart: the records before the checkpoint are skipped, the
    rest of the list they end in goes out first, and nothing is lost or repeated."""
    out = tmp_path / "out.jsonl"
    tc = chain(
        "resume_lists",
        [
            (
                "src",
                "runtime_elements:CrashingListSource",
                {"count": 3000, "rate": 1500, "crash_at": 2000, "marker": str(tmp_path / "m")},
            ),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off", snapshot_every=0.3)
    assert result.exit_code == 0, result.problems
    assert result.summary()["elements"]["src"]["restarts"] == 1
    assert sorted(r["n"] for r in lines(out)) == list(range(3000))
    skipped = re.search(r"skipped the ([\d,]+) records", capsys.readouterr().err)
    assert skipped, "the restored source skipped nothing: no checkpoint before the crash"
    assert int(skipped.group(1).replace(",", "")) % 1000, "the skip ended on a list boundary"


def test_a_source_that_cannot_replay_says_what_it_lost(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    tc = chain(
        "noreplay",
        [
            (
                "src",
                "runtime_elements:CrashingSource",
                {
                    "count": 3000,
                    "rate": 1500,
                    "crash_at": 2000,
                    "marker": str(tmp_path / "m"),
                    "resumable": False,
                },
            ),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off")
    assert result.exit_code == 1
    assert any(
        "source 'src' cannot replay" in p and "at-most-once" in p for p in result.problems
    ), result.problems


def test_a_waiting_source_does_not_hold_up_a_checkpoint(cluster: Cluster, tmp_path: Path) -> None:
    """A source's wait() ends when a checkpoint is due: downstream, an element aligning
    barriers would otherwise hold its other inputs back until the wait is over."""
    out, waited = tmp_path / "out.jsonl", tmp_path / "waited"
    tc = chain(
        "waits",
        [
            (
                "src",
                "runtime_elements:WaitsLong",
                {"count": 100, "seconds": 120, "path": str(waited)},
            ),
            ("sink", "runtime_elements:Collect", {"path": str(out)}),
        ],
    )
    result = cluster.run(tc, fusion="off", snapshot_every=0.2)
    assert result.exit_code == 0, result.problems
    assert waited.read_text() == "early"
    assert result.summary()["checkpoints"]["completed"] >= 1
    assert sorted(r["n"] for r in lines(out)) == list(range(200))


@pytest.mark.parametrize("fusion", ["off", "max"])
@pytest.mark.parametrize("crash", [False, True])
def test_two_elements_that_ask_each_other_both_finish(
    cluster: Cluster, tmp_path: Path, fusion: str, crash: bool
) -> None:
    """a asks b and b asks a, in two processes. Each answers the other until the other
    has finished asking: that is when its outputs end, not when it is finished (both
    waited for the other's finish for ever). With ``crash``, a's process dies (exit 9)
    at the first question b asks it after a's outputs ended; the run restores from a
    checkpoint and the outputs are still exact."""
    marker = tmp_path / "crashed"
    elements = [
        ("g1", "Generate", {"count": 50}),
        ("g2", "Generate", {"count": 600, "rate": 600}),
        ("a", "runtime_elements:AskEachOther", {"crash_marker": str(marker) if crash else None}),
        ("b", "runtime_elements:AskEachOther", {"crash_marker": None}),
        ("s1", "runtime_elements:Collect", {"path": str(tmp_path / "a.jsonl")}),
        ("s2", "runtime_elements:Collect", {"path": str(tmp_path / "b.jsonl")}),
    ]
    links = [
        ("push", "g1", "out", "a", "in"),
        ("push", "g2", "out", "b", "in"),
        ("push", "a", "out", "s1", "in"),
        ("push", "b", "out", "s2", "in"),
        ("query", "a", "ask", "b", "get"),
        ("query", "b", "ask", "a", "get"),
    ]
    tc = chain("mutual", [])
    tc["elements"] = [
        {"id": i, "name": n, "class": c, "params": p, "node": None, "shard": None}
        for i, (n, c, p) in enumerate(elements)
    ]
    tc["connections"] = [
        {
            "id": i,
            "kind": kind,
            "from": {"element": src, "port": out},
            "to": {"element": dst, "port": into},
        }
        for i, (kind, src, out, dst, into) in enumerate(links)
    ]
    result = cluster.run(tc, fusion=fusion, snapshot_every=0.2)
    assert result.exit_code == 0, result.problems
    assert marker.exists() is crash
    assert result.summary()["checkpoints"]["restores"] == (1 if crash else 0)
    for path, count in (("a.jsonl", 50), ("b.jsonl", 600)):
        got = sorted((r["id"], r["other"]) for r in lines(tmp_path / path))
        assert got == [(i, 2 * i) for i in range(count)]
    assert result.state.lost() == []
