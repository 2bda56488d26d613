"""The master's bookkeeping of a run: readiness, wiring, counters, exits, losses (pure)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from datablox.caretaker.runs import files_named
from datablox.master.planner import Plan, ProcessPlan
from datablox.master.state import RunState
from datablox.master.words import counted

# src -> mid -> sink, mid asks store; src2 -> sink (fan-in); mid and sink2 share a process
TRADECRAFT: dict[str, Any] = {
    "tradecraft": 1,
    "name": "t",
    "search_path": ["/somewhere"],
    "elements": [
        {"id": i, "name": n, "class": c, "params": {}, "node": None, "shard": None}
        for i, (n, c) in enumerate(
            [
                ("src", "Generate"),
                ("mid", "Lookup"),
                ("sink2", "Null"),
                ("sink", "Count"),
                ("store", "KeyValueStore"),
                ("src2", "Generate"),
            ]
        )
    ],
    "connections": [
        {
            "id": 0,
            "kind": "push",
            "from": {"element": "src", "port": "out"},
            "to": {"element": "mid", "port": "in"},
        },
        {
            "id": 1,
            "kind": "push",
            "from": {"element": "mid", "port": "out"},
            "to": {"element": "sink", "port": "in"},
        },
        {
            "id": 2,
            "kind": "query",
            "from": {"element": "mid", "port": "ask"},
            "to": {"element": "store", "port": "get"},
        },
        {
            "id": 3,
            "kind": "push",
            "from": {"element": "src2", "port": "out"},
            "to": {"element": "sink", "port": "in"},
        },
        {
            "id": 4,
            "kind": "push",
            "from": {"element": "mid", "port": "out"},
            "to": {"element": "sink2", "port": "in"},
        },
    ],
    "feeds": [],
    "fuse": [],
}
PLAN = Plan(
    [
        ProcessPlan("p0-src", "local", ["src"]),
        ProcessPlan("p1-mid", "local", ["mid", "sink2"]),
        ProcessPlan("p2-sink", "local", ["sink"]),
        ProcessPlan("p3-store", "local", ["store"]),
        ProcessPlan("p4-src2", "local", ["src2"]),
    ]
)


def fresh() -> RunState:
    return RunState(TRADECRAFT, PLAN)


def ready_all(st: RunState) -> None:
    for i, name in enumerate(st.processes):
        st.on_ready(name, {str(i): f"tcp://127.0.0.1:{5000 + i}"}, 100 + i)


def test_the_state_starts_from_the_plan() -> None:
    st = fresh()
    assert list(st.processes) == ["p0-src", "p1-mid", "p2-sink", "p3-store", "p4-src2"]
    assert st.elements["sink2"].process == "p1-mid"
    assert st.elements["sink2"].node == "local"
    assert st.elements["store"].cls == "KeyValueStore"
    assert not st.done() and not st.failed()


def test_a_process_spec_holds_its_elements_and_every_connection_touching_them() -> None:
    spec = fresh().spec_for("p1-mid")
    assert spec["process"] == "p1-mid"
    assert [e["name"] for e in spec["elements"]] == ["mid", "sink2"]
    assert [c["id"] for c in spec["connections"]] == [0, 1, 2, 4]
    assert spec["search_path"] == ["/somewhere"]
    assert [c["id"] for c in fresh().spec_for("p3-store")["connections"]] == [2]


def test_readiness_and_start() -> None:
    st = fresh()
    names = list(st.processes)
    for name in names[:-1]:
        st.on_ready(name, {}, 1)
    assert not st.all_ready()
    st.on_ready(names[-1], {"9": "tcp://127.0.0.1:9"}, 7)
    assert st.all_ready()
    assert st.processes[names[-1]].pid == 7
    for name in names[:-1]:
        st.processes[name].started = True
    assert not st.all_started()
    # a process that already exited does not hold the start back
    st.on_exit(names[-1], "start_failed", 3)
    assert st.all_started()


def test_wiring_gives_every_endpoint_and_no_ended_inputs_at_first() -> None:
    st = fresh()
    ready_all(st)
    msg = st.wire_message("p2-sink")
    assert msg == {
        "op": "wire",
        "endpoints": {str(i): f"tcp://127.0.0.1:{5000 + i}" for i in range(5)},
        "ended": [],
        "query_done": [],
    }


def test_wiring_after_a_sender_finished_names_its_connections_as_ended() -> None:
    st = fresh()
    ready_all(st)
    st.on_element_finished("src2", None, {"out": 10})
    assert st.wire_message("p2-sink")["ended"] == [3]
    assert st.wire_message("p1-mid")["ended"] == []
    st.on_element_finished("mid", None, {"in": 5, "out": 5})
    assert st.wire_message("p2-sink")["ended"] == [1, 3]
    # query connections never appear: the answering side has no end of stream
    assert st.wire_message("p3-store")["ended"] == []


def test_a_restore_starts_every_process_and_element_again() -> None:
    """After a crash every process restarts from a checkpoint: none is ready, started,
    exited or finished, so the wiring waits for all and no end of stream is assumed."""
    st = fresh()
    ready_all(st)
    for p in st.processes.values():
        p.started = True
    st.on_element_finished("mid", None, {})
    st.on_exit("p4-src2", "finished", 0)
    st.on_restore()
    assert not st.all_ready() and not st.all_started()
    assert not any(v.finished for v in st.elements.values())
    assert all(p.exited is None for p in st.processes.values())
    ready_all(st)
    assert st.wire_message("p2-sink")["ended"] == []
    assert st.wire_message("p3-store")["query_done"] == []


def test_load_reports_update_figures_and_rates() -> None:
    st = fresh()
    st.on_load(
        "p2-sink",
        {
            "cpu": 40.0,
            "rss": 1000,
            "peak_rss": 2000,
            "elements": {
                "sink": {"in": 100, "dead": 1, "busy": 0.5, "blocked": 0.25, "idle": 0.25}
            },
            "recv": {"1": 60, "3": 40},
        },
        now=10.0,
    )
    proc, view = st.processes["p2-sink"], st.elements["sink"]
    assert (proc.cpu, proc.rss, proc.peak_rss) == (40.0, 1000, 2000)
    assert view.shares() == (0.5, 0.25, 0.25)
    assert view.records_in == 100 and view.stats["dead"] == 1
    assert view.rate == 0.0
    st.on_load("p2-sink", {"elements": {"sink": {"in": 300}}}, now=12.0)
    assert view.rate == 100.0
    assert view.shares() == (0.5, 0.25, 0.25), "a final report without shares keeps the last"
    assert st.recv == {1: 60, 3: 40}


def test_final_shares_are_of_the_elements_own_time_until_it_finished() -> None:
    st = fresh()
    view = st.elements["sink"]
    view.stats.update(busy_seconds=1.0, blocked_seconds=3.0)
    assert view.shares(10.0) == pytest.approx((0.1, 0.3, 0.6)), "not finished: over the run"
    view.finished = True
    view.finished_after = 4.0
    assert view.shares(10.0) == pytest.approx((0.25, 0.75, 0.0)), "done early: not idle after"


def test_backlog_is_sent_minus_received_over_the_inputs_between_processes() -> None:
    st = fresh()
    st.on_load("p1-mid", {"sent": {"1": 500, "4": 70}}, now=1.0)
    st.on_load("p4-src2", {"sent": {"3": 200}}, now=1.0)
    st.on_load("p2-sink", {"recv": {"1": 450, "3": 120}}, now=1.0)
    assert st.backlog("sink") == (500 - 450) + (200 - 120)
    # fused: mid and sink2 share a process, so nothing queues between them
    assert st.backlog("sink2") == 0
    assert st.backlog("src") == 0
    # a receive counter ahead of a stale send counter is no negative backlog
    st.on_load("p2-sink", {"recv": {"1": 600, "3": 200}}, now=2.0)
    assert st.backlog("sink") == 0


def test_an_asker_finishing_tells_the_answerer_its_queries_are_done() -> None:
    st = fresh()
    assert st.on_element_finished("mid", None, {"in": 3}) == [
        ("p3-store", {"op": "query_done", "conns": [2]})
    ]
    assert st.elements["mid"].finished and st.elements["mid"].stats == {"in": 3}
    assert st.problems == []
    assert st.on_element_finished("src", None, {}) == []


def test_an_asker_whose_outputs_ended_tells_the_answerer_before_it_finishes() -> None:
    """It asks no more once its outputs have ended, though it is not finished (it may
    still answer queries): the answerer may finish, also when it restarts (wiring);
    after a restore, only what a finished element says counts again."""
    st = fresh()
    ready_all(st)
    assert st.on_outputs_ended("mid") == [("p3-store", {"op": "query_done", "conns": [2]})]
    assert not st.elements["mid"].finished
    assert st.wire_message("p3-store")["query_done"] == [2]
    st.on_restore()
    ready_all(st)
    assert st.wire_message("p3-store")["query_done"] == []


def test_the_files_an_element_message_names_ship_with_it() -> None:
    """A final snapshot named when the outputs end goes to the master like one named
    when the element finishes (nodes without a shared folder)."""
    assert files_named({"op": "outputs_ended", "element": "a", "final": "a/final-1"}) == [
        "a/final-1"
    ]
    assert files_named({"op": "element_finished", "final": "b/final-2"}) == ["b/final-2"]
    assert files_named({"op": "outputs_ended", "element": "a", "final": None}) == []


def test_an_element_that_finishes_failed_is_a_problem() -> None:
    st = fresh()
    st.on_element_finished("sink", "on_finish raised OSError: disk full", {})
    assert st.elements["sink"].failed == "on_finish raised OSError: disk full"
    assert st.problems == ["element 'sink': on_finish raised OSError: disk full"]
    assert st.failed()


def test_a_finished_process_needs_no_commands() -> None:
    st = fresh()
    assert st.on_exit("p0-src", "finished", 0) == []
    assert st.processes["p0-src"].exited == "finished"
    assert st.processes["p0-src"].exit_code == 0
    assert st.problems == [] and not st.failed()


def test_a_crashed_process_ends_its_outputs_and_abandons_its_inputs() -> None:
    st = fresh()
    commands = st.on_exit("p1-mid", "crashed", 1, "ZeroDivisionError: division by zero")
    assert sorted(commands, key=str) == sorted(
        [
            ("p0-src", {"op": "abandon", "conns": [0]}),
            ("p2-sink", {"op": "ended", "conns": [1]}),
            ("p3-store", {"op": "query_done", "conns": [2]}),
        ],
        key=str,
    )
    assert st.problems == [
        "process p1-mid (mid, sink2) crashed and was not restarted "
        "(exit code 1): ZeroDivisionError: division by zero"
    ]
    assert st.elements["mid"].finished and st.elements["sink2"].finished
    assert st.elements["mid"].failed == "crashed and was not restarted"
    assert st.failed()


def test_a_process_that_gave_up_says_how_often_it_crashed() -> None:
    st = fresh()
    st.processes["p2-sink"].restarts = 3
    commands = st.on_exit("p2-sink", "gave_up", 9)
    assert sorted(commands, key=str) == sorted(
        [("p1-mid", {"op": "abandon", "conns": [1]}), ("p4-src2", {"op": "abandon", "conns": [3]})],
        key=str,
    )
    assert st.problems == ["process p2-sink (sink) crashed 4 times; gave up (exit code 9)"]


def test_kills_and_start_failures_are_not_problems_of_their_own() -> None:
    st = fresh()
    st.on_exit("p3-store", "start_failed", 3)
    st.on_exit("p0-src", "killed", -9)
    assert st.problems == []
    assert st.elements["store"].failed == "could not start"
    assert st.elements["src"].failed == "was killed"
    # yet the run failed: not every process finished
    assert st.failed()


def test_no_commands_go_to_processes_that_already_exited() -> None:
    st = fresh()
    st.on_exit("p0-src", "finished", 0)
    st.on_exit("p3-store", "killed", -9)
    st.on_exit("p2-sink", "killed", -9)
    assert st.on_exit("p1-mid", "crashed", 1) == []


def test_done_when_every_process_exited_and_sent_its_last_report() -> None:
    st = fresh()
    names = list(st.processes)
    for i, name in enumerate(names):
        assert not st.done()
        # the last report may come before or after the exit is seen
        if i % 2:
            st.on_final_report(name, {"elements": {}}, now=1.0)
            st.on_exit(name, "finished", 0)
        else:
            st.on_exit(name, "finished", 0)
            assert name in st.unreported()
            assert not st.done()
            st.on_final_report(name, {"elements": {}}, now=1.0)
    assert st.unreported() == []
    assert st.done() and not st.failed()


def test_a_crashed_process_needs_no_last_report() -> None:
    st = fresh()
    for name in st.processes:
        st.on_exit(name, "gave_up", 9)
    assert st.done() and st.failed()


def test_counters_are_restored_and_what_is_sent_again_is_counted_as_replayed() -> None:
    st = fresh()
    st.on_load("p0-src", {"sent": {"0": 1000}}, now=1.0)
    st.on_load("p1-mid", {"recv": {"0": 900}, "sent": {"1": 800, "4": 800}}, now=1.0)
    st.on_restore()
    # restored processes say what their connections had sent at the checkpoint
    st.on_started("p0-src", {"0": 600})
    st.on_started("p1-mid", {"1": 500, "4": 500})
    assert st.sent[0] == 600 and st.sent[1] == 500
    assert st.replayed == {0: 400, 1: 300, 4: 300}
    st.on_load("p1-mid", {"recv": {"0": 650}, "sent": {"1": 550}}, now=2.0)
    assert st.recv[0] == 650 and st.sent[1] == 550
    figures = st.connection_figures()["src.out -> mid.in"]
    assert figures == {"sent": 600, "received": 650, "replayed": 400, "duplicates_dropped": 0}


def test_nothing_is_lost_when_every_count_matches() -> None:
    st = fresh()
    st.on_load("p0-src", {"sent": {"0": 10}}, now=1.0)
    st.on_load("p1-mid", {"recv": {"0": 10}, "sent": {"1": 10, "4": 99}}, now=1.0)
    st.on_load("p2-sink", {"recv": {"1": 10}}, now=1.0)
    # 4 is fused (mid and sink2 share a process): its counts are not queue counts
    assert st.lost() == []


def test_lost_records_are_reported_per_connection() -> None:
    st = fresh()
    st.on_load("p0-src", {"sent": {"0": 1000}}, now=1.0)
    st.on_load("p1-mid", {"recv": {"0": 990}, "sent": {"1": 2500}}, now=1.0)
    st.on_load("p4-src2", {"sent": {"3": 7}}, now=1.0)
    st.on_load("p2-sink", {"recv": {"1": 500, "3": 7}}, now=1.0)
    st.on_load("p1-mid", {"dropped": {"1": 2000}}, now=2.0)
    assert st.lost() == [
        "src.out -> mid.in: 1,000 sent, 990 received (10 lost)",
        "mid.out -> sink.in: 2,000 records discarded after the receiver gave up",
        "mid.out -> sink.in: 2,500 sent, 500 received (2,000 lost)",
    ]


def test_records_a_failed_receiver_did_not_take_are_not_called_lost() -> None:
    st = fresh()
    st.on_load("p0-src", {"sent": {"0": 1000}}, now=1.0)
    st.on_load("p1-mid", {"recv": {"0": 990}}, now=1.0)
    st.on_element_finished("mid", "ElementError: no", {})
    assert st.lost() == ["src.out -> mid.in: 1,000 sent, 990 received (10 not taken: 'mid' failed)"]


def test_counts_in_messages_take_the_right_number() -> None:
    assert counted(1, "element") == "1 element"
    assert counted(0, "element") == "0 elements"
    assert counted(1234, "time") == "1,234 times"
    assert counted(2, "entry", "entries") == "2 entries"


def test_a_running_process_that_stops_reporting_is_shown_as_silent() -> None:
    """Before: an element stuck in its own code kept its last figures, often 'idle'."""
    from rich.console import Console

    from datablox.master.display import element_table

    st = fresh()
    assert st.silent_for("p1-mid", 100.0) is None, "not started: not silent"
    st.processes["p1-mid"].started = True
    st.on_load("p1-mid", {"recv": {"0": 10}}, now=10.0)
    assert st.silent_for("p1-mid", 12.5) is None
    assert st.silent_for("p1-mid", 14.0) == 4.0
    st.processes["p1-mid"].last_load = time.monotonic() - 7.2
    console = Console(width=250, record=True)
    console.print(element_table(st))
    assert "silent 7 s" in console.export_text()
    st.processes["p1-mid"].exited = "finished"
    assert st.silent_for("p1-mid", 1e9) is None
