"""Benchmarks of shards: autoscaling an I/O-bound and a CPU-bound pool, a live partition move."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.pipeline import chain, run
from datablox.partition import partition_of


def _shard(tc: dict[str, Any], name: str, shard: dict[str, Any]) -> dict[str, Any]:
    for e in tc["elements"]:
        if e["name"] == name:
            e["shard"] = shard
    return tc


def autoscale_io(feed: float = 8000.0, seconds: float = 70.0, idle: float = 35.0) -> dict[str, Any]:
    """A pool of elements that wait 1 ms per record, fed ``feed`` records/s, shard(min=1, max=12).

    Returns the timeline (seconds, members, records/s into the shard) and the targets'
    figures: when 95% of the feed was first reached and after how many decisions,
    member-count changes in the 60 s after that, and how long after the feed stopped
    the shard was back at min.
    """
    tc = chain(
        "autoscale_io",
        [
            (
                "src",
                "benchmarks.elements:FeedThenIdle",
                {"rate": feed, "seconds": seconds, "idle": idle},
            ),
            ("work", "benchmarks.elements:Slow", {"ms": 1.0}),
            ("sink", "Count", {}),
        ],
    )
    _shard(tc, "work", {"min": 1, "max": 12})
    with tempfile.TemporaryDirectory() as tmp:
        result = run(tc, "off", Path(tmp))
    return _scaling_figures(result.summary()["shards"]["work"], feed, seconds)


def _scaling_figures(shard: dict[str, Any], feed: float, seconds: float) -> dict[str, Any]:
    timeline = shard["timeline"]
    changes = [d for d in shard["decisions"] if d["planned"] != d["observed"]]
    reached = next((t for t, _, rate in timeline if rate >= 0.95 * feed), None)
    before = [d for d in changes if reached is not None and d["at"] <= reached]
    after = [d for d in changes if reached is not None and reached < d["at"] <= reached + 60]
    steady_end = min(seconds, (reached or 0) + 60)
    back = next(
        (t for t, members, _ in timeline if t > seconds and members == 1),
        None,
    )
    rates = [rate for t, _, rate in timeline if reached is not None and reached <= t <= steady_end]
    return {
        "timeline": timeline,
        "decisions": [(d["at"], d["observed"], d["planned"]) for d in changes],
        "reached_at": reached,
        "decisions_to_reach": len(before),
        "changes_next_60s": len(after),
        "steady_rate": sum(rates) / len(rates) if rates else 0.0,
        "back_to_min_after": None if back is None else back - seconds,
        "max_members": max((m for _, m, _ in timeline), default=0),
    }


def autoscale_cpu(feed: float = 6000.0, seconds: float = 30.0) -> dict[str, Any]:
    """Members that burn 1 ms of CPU per record, fed more than the cores take: one member's
    throughput alone, then the autoscaled pool's (shard(min=1, max=8))."""

    def one(maximum: int) -> dict[str, Any]:
        tc = chain(
            "autoscale_cpu",
            [
                ("src", "benchmarks.elements:FeedThenIdle", {"rate": feed, "seconds": seconds}),
                ("work", "benchmarks.elements:Slow", {"ms": 1.0, "cpu": True}),
                ("sink", "Null", {}),
            ],
        )
        _shard(tc, "work", {"min": 1, "max": maximum})
        with tempfile.TemporaryDirectory() as tmp:
            result = run(tc, "off", Path(tmp))
        shard = result.summary()["shards"]["work"]
        timeline = shard["timeline"]
        tail = [rate for t, _, rate in timeline if t >= seconds / 2 and t <= seconds]
        return {
            "rate": sum(tail) / len(tail) if tail else 0.0,
            "max_members": max((m for _, m, _ in timeline), default=1),
            "decisions": [
                (d["at"], d["observed"], d["planned"])
                for d in shard["decisions"]
                if d["planned"] != d["observed"]
            ],
        }

    alone = one(1)
    scaled = one(8)
    return {
        "one_member": alone["rate"],
        **scaled,
        "ratio": scaled["rate"] / max(1.0, alone["rate"]),
    }


def live_move(keys: int = 1_000_000, rate: float = 20_000.0) -> dict[str, Any]:
    """A keyed counting shard holding ``keys`` keys, fed ``rate`` records/s; 128 of its 256
    partitions move to a new member. Latency (ms) of records in moved and unmoved
    partitions before, during and after the move."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lat.jsonl"
        seconds = 20.0
        tc = chain(
            "live_move",
            [
                (
                    "src",
                    "benchmarks.elements:FeedThenIdle",
                    {"rate": rate, "seconds": seconds, "prefill": keys},
                ),
                ("counts", "KeyCount", {"key": "key", "emit": "each"}),
                ("sink", "benchmarks.elements:StampSink", {"path": str(out), "skip": keys}),
            ],
        )
        _shard(tc, "counts", {"min": 1, "max": 2, "key": ["key"]})
        after = keys + int(rate * 8)
        result = run(
            tc,
            "off",
            Path(tmp) / "run",
            autoscale=False,
            reshard=[f"counts:members=2@{after}"],
        )
        shard = result.summary()["shards"]["counts"]
        rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    moved_parts = {p for p, owner in enumerate(shard["owners"]) if owner == "counts#2"}
    moves = shard["moves"]
    start = min(m["monotonic"] for m in moves)
    end = max(m["monotonic"] + m["seconds"] for m in moves)
    windows: dict[str, dict[str, list[float]]] = {
        w: {"moved": [], "unmoved": []} for w in ("before", "during", "after")
    }
    exact = _counts_exact(rows)
    for t_emit, ms, key, _ in rows:
        # a record emitted while its partition was paused waits in the router: "during"
        window = "before" if t_emit < start else "during" if t_emit <= end else "after"
        kind = "moved" if partition_of(key) in moved_parts else "unmoved"
        windows[window][kind].append(ms)
    figures: dict[str, Any] = {
        "counts_exact": exact,
        "moves": len(moves),
        "move_seconds": round(end - start, 3),
        "partitions_moved": len(moved_parts),
    }
    for window, kinds in windows.items():
        for kind, values in kinds.items():
            values.sort()
            n = len(values)
            figures[f"{window}_{kind}"] = {
                "n": n,
                "p50": values[n // 2] if n else None,
                "p99": values[min(n - 1, int(n * 0.99))] if n else None,
                "max": values[-1] if n else None,
            }
    return figures


def _counts_exact(rows: list[list[Any]]) -> bool:
    """Every key's counts after the prefill (which counted each key once) are 2, 3, … n+1,
    each once: every record was counted exactly once, across the move."""
    seen: dict[str, list[int]] = {}
    for _, _, key, count in rows:
        seen.setdefault(key, []).append(count)
    return all(sorted(c) == list(range(2, len(c) + 2)) for c in seen.values())


if __name__ == "__main__":
    import sys

    which = sys.argv[1] if len(sys.argv) > 1 else "move"
    if which == "io":
        found = autoscale_io()
    elif which == "cpu":
        found = autoscale_cpu()
    else:
        found = live_move()
    print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


def figure_rows(got: dict[str, Any]) -> list[list[str]]:
    """Rows of the figures table (value in the second column) for the shard benchmarks."""
    rows: list[list[str]] = []
    io = got.get("shards_io")
    if io:
        rows += [
            ["autoscale I/O: member-count changes (at s: from → to)", _changes(io), "", ""],
            ["autoscale I/O: records/s in steady feed", f"{io['steady_rate']:,.0f}", "", ""],
        ]
    cpu = got.get("shards_cpu")
    if cpu:
        rows += [
            ["autoscale CPU: one member alone", f"{cpu['one_member']:,.0f} rec/s", "", ""],
            [
                f"autoscale CPU: the pool ({cpu['max_members']} member(s) at most)",
                f"{cpu['rate']:,.0f} rec/s",
                "",
                "",
            ],
        ]
    move = got.get("shards_move")
    if move:
        rows.append(
            [
                f"live move: {move['partitions_moved']} partitions in {move['moves']} batches",
                f"{move['move_seconds']:.2f} s",
                "",
                "",
            ]
        )
        for window in ("before", "during", "after"):
            for kind in ("moved", "unmoved"):
                f = move[f"{window}_{kind}"]
                if f["n"]:
                    rows.append(
                        [
                            f"live move: latency of {kind} partitions {window} (p50/p99/max)",
                            f"{f['p50']:.1f} / {f['p99']:.1f} / {f['max']:.1f} ms",
                            "",
                            "",
                        ]
                    )
    return rows


def target_rows(got: dict[str, Any]) -> list[list[str]]:
    """Rows of the targets table for the shard benchmarks: target, this run, met."""

    def met(ok: bool) -> str:
        return "met" if ok else "missed"

    rows: list[list[str]] = []
    io = got.get("shards_io")
    if io:
        reached = io["reached_at"]
        rows += [
            [
                "autoscale I/O: ≥ 95% of 8,000 rec/s within 10 s of the feed starting",
                "never" if reached is None else f"at {reached:.1f} s",
                met(reached is not None and reached <= 10),
            ],
            [
                "autoscale I/O: reached in ≤ 2 scaling decisions",
                str(io["decisions_to_reach"]),
                met(reached is not None and io["decisions_to_reach"] <= 2),
            ],
            [
                "autoscale I/O: ≤ 1 further change in the next 60 s",
                str(io["changes_next_60s"]),
                met(reached is not None and io["changes_next_60s"] <= 1),
            ],
            [
                "autoscale I/O: back to min ≤ 30 s after the feed stops",
                "never" if io["back_to_min_after"] is None else f"{io['back_to_min_after']:.1f} s",
                met(io["back_to_min_after"] is not None and io["back_to_min_after"] <= 30),
            ],
        ]
    cpu = got.get("shards_cpu")
    if cpu:
        cores = os.cpu_count() or 1
        rows += [
            [
                "autoscale CPU: ≥ 1.7x one member's throughput",
                f"{cpu['ratio']:.2f}x",
                met(cpu["ratio"] >= 1.7),
            ],
            [
                f"autoscale CPU: no more members than cores + 1 ({cores + 1})",
                str(cpu["max_members"]),
                met(cpu["max_members"] <= cores + 1),
            ],
        ]
    move = got.get("shards_move")
    if move:
        moved = move["during_moved"]["max"] or 0.0
        during = move["during_unmoved"]["p99"] or 0.0
        steady = move["before_unmoved"]["p99"] or 1e-9
        rows += [
            [
                "live move: max latency in moving partitions ≤ 100 ms",
                f"{moved:.1f} ms",
                met(moved <= 100),
            ],
            [
                "live move: p99 of unmoved partitions during ≤ 2x steady",
                f"{during:.1f} / {steady:.1f} ms = {during / steady:.2f}x",
                met(during <= 2 * steady),
            ],
            [
                "live move: counts exact afterwards",
                "exact" if move["counts_exact"] else "NOT exact",
                met(move["counts_exact"]),
            ],
        ]
    return rows


def timeline_rows(io: dict[str, Any], every: float = 5.0) -> list[list[str]]:
    """The I/O autoscale timeline, one row per ``every`` seconds (and at each change)."""
    rows, last_t, last_m = [], -every, None
    for t, members, rate in io["timeline"]:
        if t - last_t >= every or members != last_m:
            rows.append([f"{t:.1f}", str(members), f"{rate:,.0f}"])
            last_t, last_m = t, members
    return rows


def _changes(io: dict[str, Any]) -> str:
    return ", ".join(f"{at:.1f}: {a} → {b}" for at, a, b in io["decisions"]) or "none"
