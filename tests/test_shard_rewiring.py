"""The ledger of a shard change's rewiring messages (pure): what a process that answered,
or never will, leaves the new member to do."""

from __future__ import annotations

from datablox.shards.rewiring import Ledger, Settled, member_ops

PUSH = {"id": 4, "kind": "push"}
ASK = {"id": 5, "kind": "query"}


def test_an_answer_settles_what_was_not_taken() -> None:
    ledger = Ledger()
    number = ledger.sent("p1-out", "p3-m#2", "add_inputs", [PUSH, ASK])
    assert ledger.waiting("p3-m#2", "add_inputs")
    assert not ledger.waiting("p3-m#2", "shard_add")
    assert ledger.answered(number, [4]) == Settled("p3-m#2", "add_inputs", {5: "query"})
    assert not ledger.waiting("p3-m#2", "add_inputs")
    assert ledger.answered(number, [4]) is None  # once only


def test_a_process_that_reads_no_more_took_nothing_of_what_it_did_not_answer() -> None:
    ledger = Ledger()
    ledger.sent("p0-src", "p3-m#2", "shard_add", [PUSH])
    ledger.sent("p0-src", "p4-m#3", "shard_add", [{"id": 6, "kind": "push"}])
    answered = ledger.sent("p1-out", "p3-m#2", "add_inputs", [ASK])
    assert ledger.gone("p0-src") == [
        Settled("p3-m#2", "shard_add", {4: "push"}),
        Settled("p4-m#3", "shard_add", {6: "push"}),
    ]
    assert ledger.gone("p0-src") == []
    assert ledger.answered(answered, [5]) == Settled("p3-m#2", "add_inputs", {})
    assert not ledger.open


def test_a_restore_forgets_every_message() -> None:
    ledger = Ledger()
    number = ledger.sent("p0-src", "p3-m#2", "shard_add", [PUSH])
    ledger.clear()
    assert ledger.answered(number, []) is None  # an answer from before the restore


def test_what_the_member_is_told() -> None:
    both = {4: "push", 5: "query", 7: "push"}
    # a receiver refused: drop what would go there; nothing for a refused query connection
    assert member_ops(Settled("m", "add_inputs", both)) == [{"op": "abandon", "conns": [4, 7]}]
    # a sender refused: the member ends those connections itself
    assert member_ops(Settled("m", "shard_add", both)) == [
        {"op": "ended", "conns": [4, 7]},
        {"op": "query_done", "conns": [5]},
    ]
    assert member_ops(Settled("m", "shard_add", {})) == []
