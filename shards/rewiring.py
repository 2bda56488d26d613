"""Rewiring messages of a shard change, kept until the process they went to says what it took.

Pure: no sockets, no clock. A new member is wired in by two messages to other
processes: ``add_inputs`` to each receiver of its outputs (wait for its
connections' ends) and ``shard_add`` to each sender into the shard (open a link
to it). A process reads control messages only while it runs: once its
elements have all finished it sends its final report and reads nothing more,
and the master learns of its exit later still. A message sent in between is
never read, and nothing on the member's side would know.

So each message has a number, and the process answers it with the connections
it took. Its answer comes before its final report (a process's messages arrive
in order), so a process whose final report (or exit) comes first took none.
What was not taken is settled on the member's side (:func:`member_ops`):

- a receiver that did not take a push connection has finished: the member
  drops what it would send there (``abandon``) instead of waiting, at its exit,
  to deliver it;
- a sender that did not take a connection has finished: the member ends it
  itself (``ended``, or ``query_done`` for an asker), as the sender's
  end-of-stream would have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: ``add_inputs`` to a receiver of the member's outputs, ``shard_add`` to a sender into it
Kind = Literal["add_inputs", "shard_add"]


@dataclass(frozen=True)
class Rewire:
    """One rewiring message sent and not answered yet."""

    number: int
    process: str
    member: str  # the member's process
    kind: Kind
    #: connection id -> "push" or "query"
    conns: Mapping[int, str]


@dataclass(frozen=True)
class Settled:
    """A rewiring message answered (or never to be): the connections its process refused."""

    member: str
    kind: Kind
    refused: Mapping[int, str]


class Ledger:
    """Rewiring messages not answered yet, by number."""

    def __init__(self) -> None:
        self.open: dict[int, Rewire] = {}
        self.count = 0

    def sent(
        self, process: str, member: str, kind: Kind, conns: Iterable[Mapping[str, Any]]
    ) -> int:
        """Record a message to ``process`` about ``conns``; its number goes with it."""
        self.count += 1
        self.open[self.count] = Rewire(
            self.count, process, member, kind, {int(c["id"]): str(c["kind"]) for c in conns}
        )
        return self.count

    def answered(self, number: int, taken: Iterable[int]) -> Settled | None:
        """The process took ``taken``; None for a number not open (from before a restore)."""
        rewire = self.open.pop(number, None)
        if rewire is None:
            return None
        took = set(taken)
        refused = {c: kind for c, kind in rewire.conns.items() if c not in took}
        return Settled(rewire.member, rewire.kind, refused)

    def gone(self, process: str) -> list[Settled]:
        """``process`` reads no more: every message it has not answered took nothing."""
        settled = []
        for number, rewire in list(self.open.items()):
            if rewire.process == process:
                del self.open[number]
                settled.append(Settled(rewire.member, rewire.kind, dict(rewire.conns)))
        return settled

    def waiting(self, member: str, kind: Kind) -> bool:
        """True while a ``kind`` message about ``member`` is not answered."""
        return any(r.member == member and r.kind == kind for r in self.open.values())

    def clear(self) -> None:
        self.open.clear()


def member_ops(settled: Settled) -> list[dict[str, Any]]:
    """What the member is told about the connections that were refused."""
    push = sorted(c for c, kind in settled.refused.items() if kind == "push")
    query = sorted(c for c, kind in settled.refused.items() if kind == "query")
    ops: list[dict[str, Any]] = []
    if settled.kind == "add_inputs":
        # a receiver that finished: nothing the member sends there could arrive. (A refused
        # query connection needs nothing: the member asks only for records, and none come.)
        if push:
            ops.append({"op": "abandon", "conns": push})
    else:
        if push:
            ops.append({"op": "ended", "conns": push})
        if query:
            ops.append({"op": "query_done", "conns": query})
    return ops
