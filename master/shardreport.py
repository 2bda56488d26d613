"""What the live table and the summary show of a run's shards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datablox.shards.layout import member_name

if TYPE_CHECKING:
    from datablox.master.shardrun import ShardController


def shard_summary(ctl: ShardController) -> dict[str, Any]:
    """What the run's summary says of each shard."""
    out = {}
    for name, shard in ctl.layout.shards.items():
        record = ctl.records[name]
        counts = shard.table.counts() if shard.table else {}
        out[name] = {
            "kind": "keyed" if shard.keyed else "pool",
            "key": shard.key,
            "min": shard.min,
            "max": shard.max,
            "members": shard.names(),
            "partitions": {member_name(name, m): counts.get(m, 0) for m in shard.members}
            if shard.table
            else None,
            "table_version": shard.table.version if shard.table else None,
            "owners": [member_name(name, m) for m in shard.table.owners] if shard.table else None,
            "decisions": record.decisions,
            "timeline": record.timeline,
            "moves": record.moves,
            "forced_not_done": [
                not_done(a.text, ctl.shard_in(name), a.after)
                for a in ctl.actions
                if a.shard == name
            ],
        }
    return out


def not_done(action: str, received: int, after: int) -> str:
    """Why a forced change (``--reshard``) was never made."""
    if received < after:
        return (
            f"--reshard {action}: not done; the shard received {received:,} of the "
            f"{after:,} records it waited for"
        )
    # forced changes are looked at in the once-a-second rounds of the scaling policy
    return (
        f"--reshard {action}: not done; the shard had its {after:,} records only as its "
        f"stream ended ({received:,} in all), before the next round of changes"
    )


def shard_lines(ctl: ShardController) -> list[str]:
    """One line per shard for the live table."""
    out = []
    for name, shard in ctl.layout.shards.items():
        counts = shard.table.counts() if shard.table else {}
        members = ", ".join(
            member_name(name, m) + (f" {counts.get(m, 0)}p" if shard.table else "")
            for m in shard.members
        )
        decisions = ctl.records[name].decisions
        last = decisions[-1]["reason"] if decisions else "-"
        busy = f"; changing: {ctl.op_name}" if ctl.op is not None else ""
        out.append(
            f"shard {name}: {len(shard.members)} member(s) [{members}]; last decision: {last}{busy}"
        )
    return out
