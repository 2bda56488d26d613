"""The planner: which elements share a process (fusion) and which node runs each (pure)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from datablox.dsl.limits import MAX_FUSED_CHAIN
from datablox.errors import DatabloxError
from datablox.master.planner import (
    FusionMode,
    NodeInfo,
    Plan,
    chain_edges,
    over_process_limit,
    place_nodes,
    plan,
    replace_lost,
)

LOCAL = [NodeInfo("local", 8)]


def topo(
    elements: Sequence[str | tuple[str, dict[str, Any]]],
    push: Sequence[str],
    query: Sequence[str] = (),
    fuse: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """A tradecraft dict; ``push``/``query`` are ``"a>b"`` pairs on ports out/in (ask/get)."""
    specs = []
    for i, e in enumerate(elements):
        name, extra = (e, {}) if isinstance(e, str) else e
        specs.append(
            {
                "id": i,
                "name": name,
                "class": "X",
                "params": {},
                "node": None,
                "shard": None,
                **extra,
            }
        )
    conns: list[dict[str, Any]] = []
    for kind, pairs, ports in (("push", push, ("out", "in")), ("query", query, ("ask", "get"))):
        for pair in pairs:
            a, b = pair.split(">")
            conns.append(
                {
                    "id": len(conns),
                    "kind": kind,
                    "from": {"element": a, "port": ports[0]},
                    "to": {"element": b, "port": ports[1]},
                }
            )
    return {
        "tradecraft": 1,
        "name": "t",
        "search_path": [],
        "elements": specs,
        "connections": conns,
        "feeds": [],
        "fuse": [list(f) for f in fuse],
    }


def groups(p: Plan) -> list[list[str]]:
    return [proc.elements for proc in p.processes]


CHAIN = topo(["a", "b", "c", "d"], ["a>b", "b>c", "c>d"])


def test_chain_edges_are_one_to_one_push_connections() -> None:
    tc = topo(
        ["src", "dir", "x", "y", "m", "sink", "store"],
        ["src>dir", "dir>x", "dir>y", "x>sink", "y>m", "m>sink"],
        query=["m>store"],
    )
    # dir fans out, sink fans in; queries are never chain edges
    assert chain_edges(tc) == [("src", "dir"), ("y", "m")]


def test_fusion_off_gives_every_element_its_own_process() -> None:
    tc = topo(["a", "b", "c", "d"], ["a>b", "b>c", "c>d"], fuse=[["a", "b"]])
    p = plan(tc, LOCAL, "off", cheap={"b": True, "c": True})
    assert groups(p) == [["a"], ["b"], ["c"], ["d"]]
    assert [proc.name for proc in p.processes] == ["p0-a", "p1-b", "p2-c", "p3-d"]
    assert {proc.node for proc in p.processes} == {"local"}
    assert p.notices == []


def test_fusion_max_fuses_every_chain_and_nothing_else() -> None:
    tc = topo(
        ["src", "dir", "x", "y", "m", "sink"],
        ["src>dir", "dir>x", "dir>y", "x>sink", "y>m", "m>sink"],
    )
    p = plan(tc, LOCAL, "max")
    assert groups(p) == [["src", "dir"], ["x"], ["y", "m"], ["sink"]]
    assert p.process_of() == {
        "src": "p0-src",
        "dir": "p0-src",
        "x": "p1-x",
        "y": "p2-y",
        "m": "p2-y",
        "sink": "p3-sink",
    }


def test_fusion_max_fuses_a_whole_linear_chain_into_one_process() -> None:
    assert groups(plan(CHAIN, LOCAL, "max")) == [["a", "b", "c", "d"]]


@pytest.mark.parametrize("fusion", ["max", "auto"])
def test_a_chain_longer_than_the_fused_limit_runs_as_several_processes(
    fusion: FusionMode,
) -> None:
    """A chain of 300 cheap Maps fused whole overflowed Python's stack and lost batches."""
    names = [f"m{i}" for i in range(300)]
    chain = topo(names, [f"{a}>{b}" for a, b in itertools.pairwise(names)])
    found = groups(plan(chain, LOCAL, fusion, cheap=dict.fromkeys(names, True)))
    assert [len(g) for g in found] == [MAX_FUSED_CHAIN] * 7 + [20]
    assert [e for g in found for e in g] == names, "consecutive pieces of the chain"


def test_fusion_auto_without_cheap_elements_or_slot_pressure_fuses_nothing() -> None:
    assert groups(plan(CHAIN, LOCAL, "auto")) == [["a"], ["b"], ["c"], ["d"]]


def test_fusion_auto_fuses_chains_into_cheap_elements() -> None:
    p = plan(CHAIN, LOCAL, "auto", cheap={"b": True, "d": True})
    assert groups(p) == [["a", "b"], ["c", "d"]]


def test_a_cheap_sender_is_not_fused_into_its_receiver() -> None:
    # what counts is the receiver: a cheap element runs inside its sender's process
    p = plan(CHAIN, LOCAL, "auto", cheap={"a": True})
    assert groups(p) == [["a"], ["b"], ["c"], ["d"]]


def test_fuse_statements_are_kept_in_auto_and_max() -> None:
    tc = topo(["a", "b", "c", "d"], ["a>c", "b>c", "c>d"], fuse=[["a", "b", "c"]])
    assert groups(plan(tc, LOCAL, "auto")) == [["a", "b", "c"], ["d"]]
    assert groups(plan(tc, LOCAL, "max")) == [["a", "b", "c", "d"]]


def test_slot_pressure_fuses_chains_until_the_processes_fit() -> None:
    p = plan(CHAIN, [NodeInfo("local", 2)], "auto")
    assert groups(p) == [["a", "b", "c"], ["d"]]
    assert p.notices == []


def test_slot_pressure_cannot_fuse_fan_out_and_says_so() -> None:
    tc = topo(["src", "x", "y", "z"], ["src>x", "src>y", "src>z"])
    p = plan(tc, [NodeInfo("local", 2)], "auto")
    assert groups(p) == [["src"], ["x"], ["y"], ["z"]]
    assert p.notices == [
        "node 'local' runs 4 element processes on 2 slot(s); they share its CPUs "
        "(set --slots, or let --fusion auto fuse chains)"
    ]


def test_oversubscription_is_a_notice_with_fusion_off() -> None:
    p = plan(CHAIN, [NodeInfo("local", 1)], "off")
    assert len(p.processes) == 4
    assert p.notices == [
        "node 'local' runs 4 element processes on 1 slot(s); they share its CPUs "
        "(set --slots, or let --fusion auto fuse chains)"
    ]


def test_elements_go_to_their_on_node_and_the_rest_to_the_least_loaded() -> None:
    tc = topo(
        ["a", ("b", {"node": "n2"}), "c", "d", ("e", {"node": "n2"})], ["a>b", "b>c", "c>d", "d>e"]
    )
    nodes = [NodeInfo("n1", 2), NodeInfo("n2", 2)]
    placed, notices, _ = place_nodes(tc, nodes, embedded=False)
    assert placed == {"a": "n1", "b": "n2", "c": "n1", "d": "n2", "e": "n2"}
    assert notices == []
    p = plan(tc, nodes, "off", embedded=False)
    assert [(proc.elements, proc.node) for proc in p.processes] == [
        (["a"], "n1"),
        (["b"], "n2"),
        (["c"], "n1"),
        (["d"], "n2"),
        (["e"], "n2"),
    ]
    assert p.notices == [
        "node 'n2' runs 3 element processes on 2 slot(s); they share its "
        "CPUs (set --slots, or let --fusion auto fuse chains)"
    ]


def test_least_loaded_counts_load_relative_to_slots() -> None:
    tc = topo(["a", "b", "c", "d", "e", "f"], [])
    placed, _, _ = place_nodes(tc, [NodeInfo("big", 4), NodeInfo("small", 2)], embedded=False)
    # each goes where it leaves the least work per slot: 4 on big, 2 on small
    assert sorted(n for n, node in placed.items() if node == "big") == ["a", "b", "d", "e"]
    assert sorted(n for n, node in placed.items() if node == "small") == ["c", "f"]


def test_elements_on_different_nodes_are_never_fused() -> None:
    tc = topo([("a", {"node": "n1"}), ("b", {"node": "n2"}), ("c", {"node": "n2"})], ["a>b", "b>c"])
    p = plan(tc, [NodeInfo("n1", 4), NodeInfo("n2", 4)], "max", embedded=False)
    assert [(proc.elements, proc.node) for proc in p.processes] == [
        (["a"], "n1"),
        (["b", "c"], "n2"),
    ]


def test_a_fuse_group_runs_on_the_node_its_pinned_member_asks_for() -> None:
    """`fuse a, b` with only b pinned (`on n2`) is valid .topo; the fused process must run
    where b was pinned, not where least-loaded placement happened to put a."""
    tc = topo(["a", ("b", {"node": "n2"})], ["a>b"], fuse=[["a", "b"]])
    p = plan(tc, [NodeInfo("n1", 4), NodeInfo("n2", 4)], "auto", embedded=False)
    assert [(proc.elements, proc.node) for proc in p.processes] == [(["a", "b"], "n2")]


def test_embedded_runs_elements_of_unknown_nodes_locally_with_a_notice() -> None:
    tc = topo(["a", ("b", {"node": "node2"}), "c"], ["a>b", "b>c"])
    p = plan(tc, LOCAL, "max", embedded=True)
    assert groups(p) == [["a", "b", "c"]]
    assert p.processes[0].node == "local"
    assert p.notices == ["element 'b' asks for node 'node2'; the embedded care-taker runs it"]


def test_an_unknown_node_without_the_embedded_care_taker_is_an_error() -> None:
    tc = topo(["a", ("b", {"node": "node9"})], ["a>b"])
    with pytest.raises(DatabloxError) as info:
        plan(tc, [NodeInfo("n1", 2), NodeInfo("n2", 2)], "auto", embedded=False)
    assert str(info.value).startswith(
        "element 'b' is placed on node 'node9', but no care-taker serves it (nodes: n1, n2)"
    )


@pytest.mark.parametrize("fusion", ["auto", "max"])
def test_sharded_elements_are_never_fused(fusion: FusionMode) -> None:
    tc = topo(["a", ("b", {"shard": {"min": 1, "max": 4}}), "c", "d"], ["a>b", "b>c", "c>d"])
    p = plan(tc, [NodeInfo("local", 1)], fusion, cheap={"b": True, "c": True, "d": True})
    assert groups(p) == [["a"], ["b"], ["c", "d"]]


def test_busy_cores_count_as_load_and_fused_chains_are_placed_together() -> None:
    tc = topo(["a", "b", "c", "d"], ["a>b", "c>d"])
    nodes = [NodeInfo("n1", 2), NodeInfo("n2", 2)]
    p = plan(tc, nodes, "max", embedded=False, load={"n1": 1.5})
    assert [(proc.elements, proc.node) for proc in p.processes] == [
        (["a", "b"], "n2"),
        (["c", "d"], "n1"),
    ]
    assert p.reasons[0] == "'a' on n2: least loaded (0 placed, 0.0 cores busy, 2 slots) (with b)"


def test_a_shards_members_are_spread_over_the_nodes() -> None:
    tc = topo(["src", "x#1", "x#2", "x#3", "x#4"], [])
    placed, _, reasons = place_nodes(
        tc, [NodeInfo("n1", 8), NodeInfo("n2", 8)], embedded=False, load={"n1": 1.0}
    )
    members = [placed[f"x#{i}"] for i in range(1, 5)]
    assert sorted(members) == ["n1", "n1", "n2", "n2"]
    assert "1 other member(s) of its shard there" not in reasons[2]
    assert "0 other member(s) of its shard there" in reasons[2]


def test_the_processes_of_a_lost_node_go_to_the_least_loaded_survivors() -> None:
    node_of = {"p0-a": "n1", "p1-x#1": "n2", "p2-x#2": "n3", "p3-c": "n2"}
    elements_of = {"p0-a": ["a"], "p1-x#1": ["x#1"], "p2-x#2": ["x#2"], "p3-c": ["c"]}
    moves, reasons = replace_lost(
        node_of, elements_of, "n2", [NodeInfo("n1", 4), NodeInfo("n3", 4)]
    )
    # the shard member avoids n3, where the other member runs; c then evens the count
    assert moves == {"p1-x#1": "n1", "p3-c": "n3"}
    assert reasons[0].startswith("process p1-x#1 (x#1) moves from 'n2' to 'n1': least loaded")


def test_process_names_are_safe_for_group_members() -> None:
    tc = topo(["g/f", "g/m"], ["g/f>g/m"])
    assert [proc.name for proc in plan(tc, LOCAL, "off").processes] == ["p0-g.f", "p1-g.m"]
    assert [proc.name for proc in plan(tc, LOCAL, "max").processes] == ["p0-g.f"]


def test_the_plan_is_a_pure_function_of_its_inputs() -> None:
    tc = topo(["a", "b", "c"], ["a>b", "b>c"], fuse=[["a", "b"]])
    before = repr(tc)
    assert plan(tc, LOCAL, "auto") == plan(tc, LOCAL, "auto")
    assert repr(tc) == before


def test_a_plan_over_the_process_limit_says_where() -> None:
    p = plan(CHAIN, LOCAL, "off")
    assert over_process_limit(p, 4) is None
    assert over_process_limit(p, 3) == (
        "the topology needs 4 element processes on node 'local'; --max-processes allows 3 per node"
    )
    assert over_process_limit(plan(CHAIN, LOCAL, "max"), 1) is None
