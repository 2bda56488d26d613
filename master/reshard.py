"""Shard changes forced with ``--reshard``, read and checked before the run starts.

Each change is checked against its shard as declared; pure decision logic, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from datablox.errors import RunError
from datablox.partition import PARTITIONS
from datablox.shards.layout import Layout, Shard


@dataclass(frozen=True)
class Action:
    """A change forced by the user: ``SHARD:members=N@RECORDS``, ``SHARD:move=N@RECORDS``
    (move N partitions from the member with most to the one with fewest) or
    ``SHARD:rebalance@RECORDS``; done once the shard has received RECORDS records."""

    shard: str
    what: str
    count: int
    after: int
    #: as the user wrote it
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Action:
        hint = "write SHARD:members=N@RECORDS, SHARD:move=N@RECORDS or SHARD:rebalance@RECORDS"
        try:
            head, _, after = text.partition("@")
            shard, _, rest = head.partition(":")
            what, _, count = rest.partition("=")
            if what not in ("members", "move", "rebalance") or not shard:
                raise ValueError
            if (what == "rebalance") != (count == ""):
                raise ValueError
            action = cls(shard, what, int(count or 0), int(after or 0), text)
        except ValueError:
            raise RunError(f"--reshard: cannot read {text!r}", hint) from None
        if action.after < 0:
            raise RunError(
                f"--reshard {text}: RECORDS must be 0 or more, got {action.after}",
                "the change is made once the shard has received that many records",
            )
        return action

    def problem(self, shard: Shard) -> str | None:
        """Why this change cannot be made to ``shard`` as it was declared, or None."""
        if self.what == "members" and not shard.min <= self.count <= shard.max:
            return (
                f"--reshard {self.text}: shard '{shard.name}' has from {shard.min} to "
                f"{shard.max} members (its shard(min=…, max=…)), so not {self.count}"
            )
        if self.what != "members" and shard.table is None:
            return f"--reshard {self.text}: shard '{shard.name}' is a pool: it has no partitions"
        if self.what == "move" and not 1 <= self.count <= PARTITIONS:
            return f"--reshard {self.text}: a move takes 1 to {PARTITIONS} partitions"
        return None


def forced_actions(layout: Layout, texts: list[str]) -> list[Action]:
    """The ``--reshard`` changes, each checked against its shard as declared."""
    actions = [Action.parse(text) for text in texts]
    for action in actions:
        if action.shard not in layout.shards:
            raise RunError(
                f"--reshard names '{action.shard}', which is not a shard of this topology",
                f"shards: {', '.join(layout.shards) or 'none'}",
            )
        problem = action.problem(layout.shards[action.shard])
        if problem is not None:
            raise RunError(problem, "see docs/shards.md, 'Forcing a change'")
    return actions
