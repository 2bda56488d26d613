"""``python -m benchmarks``: one table of throughput, latency and memory figures.

All figures come from one run on this machine, so ratios compare like with like.
A second table checks the targets, each a ratio or figure from the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from benchmarks import joins, nodes, shards
from benchmarks.baselines import python_loop, zmq_pipeline
from benchmarks.codecs import measure_codecs
from benchmarks.peers import bytewax_available, bytewax_pipeline, bytewax_version
from benchmarks.pipeline import idle_rss, latency, pipeline_rate
from benchmarks.raw import raw_limit
from benchmarks.recovery import recovery, snapshot_of_keys
from datablox.codec import DEFAULT_CODEC

#: What ``--only`` can select, in the order it runs.
GROUPS = {
    "codecs": "codec encode+decode speed",
    "raw": "raw pyzmq single hop (transport limit), and with records built as sent",
    "zmq": "hand-written 4-process pyzmq pipeline",
    "pipeline": "datablox pipeline, 4 processes (checkpoints every 1 s, the default)",
    "pipeline_nosnap": "4-process pipeline with and without checkpoints, alternating, 3 each",
    "loop": "plain Python loop",
    "fused": "datablox pipeline, fused (checkpoints every 1 s)",
    "fused_plain": "fused, its Map declared plain: no exactness copy (information, no target)",
    "fused_nosnap": "fused pipeline with and without checkpoints, alternating, 3 each",
    "bytewax": "Bytewax, same work (when installed)",
    "latency": "p50/p99 latency at half the 4-process maximum (needs 'pipeline' or --latency-rate)",
    "idle": "idle element RSS",
    "recovery": "time from kill -9 of an element process to records flowing again",
    "snapshot": "snapshot time and size of a KeyValueStore holding 1,000,000 keys",
    "shards_io": "autoscale of a pool of I/O-bound members fed 8,000 rec/s (~2 min)",
    "shards_cpu": "autoscale of a pool of CPU-bound members, against one member (~1 min)",
    "shards_move": "live move of 128 of 256 partitions of a 1,000,000-key counting shard",
    "joins": "1,000,000 records enriched from a 10,000-row table: datablox Join vs Bytewax",
    "joins_split": "a JOIN at 0.5 ms CPU per record: one member, then its first split (~2 min)",
    "joins_swap": "latency of a stream through a JOIN while its dataset file is replaced",
    "nodes": "pipeline over 3 namespace hosts vs one, a host's loss, CURVE cost (root, sshd)",
}


def _row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def parse_only(text: str | None) -> list[str]:
    """The groups named in ``--only`` (all of them without it), in running order."""
    if text is None:
        return list(GROUPS)
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(names - GROUPS.keys())
    if unknown:
        raise ValueError(
            f"--only: unknown name(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}"
        )
    return [g for g in GROUPS if g in names]


def measure(
    groups: list[str], n: int, latency_rate: float | None, seconds: float
) -> dict[str, Any]:
    """Run the selected groups; figures keyed by group (a missing key was not run)."""

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    got: dict[str, Any] = {}
    if "codecs" in groups:
        say("measuring codecs…")
        got["codecs"] = measure_codecs()
    if "raw" in groups:
        say("measuring the raw single-hop limit…")
        got["raw"] = raw_limit(n)
        got["raw_fresh"] = raw_limit(n, fresh=True)
    if "zmq" in groups:
        say("running the hand-written 4-process pyzmq pipeline…")
        got["zmq"], got["zmq_count"] = zmq_pipeline(n)
    if "pipeline" in groups:
        say("running the separate-process pipeline…")
        got["pipeline"], got["pipeline_result"] = pipeline_rate(n, "off")
    if "pipeline_nosnap" in groups:
        say("running the separate-process pipeline with and without checkpoints, alternately…")
        got["pipeline_ab"] = checkpoint_cost(n, "off")
    if "loop" in groups:
        say("running the plain Python loop…")
        got["loop"], got["loop_count"] = python_loop(n)
    if "zmq_count" in got and "loop_count" in got and got["zmq_count"] != got["loop_count"]:
        raise RuntimeError(
            f"the baselines disagree: the pyzmq pipeline counted {got['zmq_count']:,} records, "
            f"the loop {got['loop_count']:,}"
        )
    if "fused" in groups:
        say("running the fused pipeline…")
        got["fused"], _ = pipeline_rate(n, "max")
    if "fused_plain" in groups:
        say("running the fused pipeline with its Map declared plain…")
        got["fused_plain"], _ = pipeline_rate(n, "max", plain=True)
    if "fused_nosnap" in groups:
        say("running the fused pipeline with and without checkpoints, alternately…")
        got["fused_ab"] = checkpoint_cost(n, "max")
    if "bytewax" in groups:
        if bytewax_available():
            say("running the Bytewax pipeline…")
            got["bytewax"] = bytewax_pipeline(n)
        else:
            say("bytewax is not installed (pip install -e '.[bench]'); skipping the peer")
            got["bytewax"] = None
    if "latency" in groups:
        rate = latency_rate or got["pipeline"] / 2
        say(f"measuring latency at {rate:,.0f} records/s…")
        got["latency_rate"] = rate
        got["latency"] = latency(rate, seconds)
    if "idle" in groups:
        say("measuring idle element memory…")
        got["idle"] = idle_rss()
    if "recovery" in groups:
        say("killing an element process (kill -9) three times, timing recovery…")
        got["recovery"] = recovery()
    if "snapshot" in groups:
        say("snapshotting a store of 1,000,000 keys…")
        got["snapshot"] = snapshot_of_keys()
    if "shards_io" in groups:
        say("autoscaling an I/O-bound pool (70 s of feed, then idle)…")
        got["shards_io"] = shards.autoscale_io()
    if "shards_cpu" in groups:
        say("autoscaling a CPU-bound pool, and one member alone…")
        got["shards_cpu"] = shards.autoscale_cpu()
    if "shards_move" in groups:
        say("moving 128 partitions of a 1,000,000-key shard live…")
        got["shards_move"] = shards.live_move()
    if "joins" in groups:
        say("enriching 1,000,000 records: datablox Join and Bytewax, best of two each…")
        got["joins"] = joins.enrich_all()
    if "joins_split" in groups:
        say("a costly JOIN: one member alone, then split under congestion…")
        got["joins_split"] = joins.split()
    if "joins_swap" in groups:
        say("swapping a JOIN's dataset mid-stream…")
        got["joins_swap"] = joins.swap()
    if "nodes" in groups:
        say("deploying 3 namespace hosts; pipeline spread vs one host; a host's loss…")
        got["nodes"] = nodes.measure()
    return got


#: runs of each side of a with/without-checkpoints comparison, alternating
ROUNDS = 3


def checkpoint_cost(n: int, fusion: str) -> tuple[list[float], list[float]]:
    """Rates with checkpoints every 1 s and without, alternating (the machine's noise
    between runs is larger than the difference; each side's best is compared)."""
    with_, without = [], []
    for _ in range(ROUNDS):
        with_.append(pipeline_rate(n, fusion)[0])
        without.append(pipeline_rate(n, fusion, snapshot_every=0)[0])
    return with_, without


def figure_rows(got: dict[str, Any]) -> list[list[str]]:
    """The figures table: what was measured, against the raw hop and Bytewax."""
    raw, peer = got.get("raw"), got.get("bytewax")

    def rate_row(what: str, rate: float) -> list[str]:
        return [
            what,
            f"{rate:,.0f} rec/s",
            f"{rate / raw:.2f}" if raw else "",
            f"{rate / peer:.2f}x" if peer else "",
        ]

    rows = [
        [
            f"codec {name}: encode+decode" + (" (the default)" if name == DEFAULT_CODEC else ""),
            f"{rate:,.0f} rec/s",
            "",
            "",
        ]
        for name, rate in sorted(got.get("codecs", {}).items(), key=lambda kv: -kv[1])
    ]
    labels = [
        ("raw", "raw pyzmq PUSH/PULL, 1 hop (transport limit)"),
        ("raw_fresh", "raw 1 hop, records built as sent"),
        ("zmq", "hand-written 4-process pyzmq pipeline"),
        ("pipeline", "datablox pipeline, 4 processes"),
        ("loop", "plain Python loop"),
        ("fused", "datablox pipeline, fused"),
        ("fused_plain", "datablox pipeline, fused, Map declared plain (no copy)"),
        ("bytewax", f"Bytewax {bytewax_version()}, same work"),
    ]
    rows += [rate_row(label, got[key]) for key, label in labels if got.get(key)]
    if "latency" in got:
        lat, rate = got["latency"], got["latency_rate"]
        rows += [
            [f"p50 latency at {rate:,.0f} rec/s", f"{lat['p50_ms']:.2f} ms", "", ""],
            [f"p99 latency at {rate:,.0f} rec/s", f"{lat['p99_ms']:.2f} ms", "", ""],
        ]
    if "idle" in got:
        rows.append(["idle element RSS", f"{got['idle'] / 1e6:.1f} MB", "", ""])
    for key, what in (("pipeline_ab", "4 processes"), ("fused_ab", "fused")):
        if key in got:
            with_, without = got[key]
            rows += [
                [
                    f"{what}, checkpoints every 1 s (best of {ROUNDS}, alternating)",
                    ", ".join(f"{r:,.0f}" for r in with_) + " rec/s",
                    "",
                    "",
                ],
                [
                    f"{what}, no checkpoints after the start (best of {ROUNDS})",
                    ", ".join(f"{r:,.0f}" for r in without) + " rec/s",
                    "",
                    "",
                ],
            ]
    if "recovery" in got:
        rec = got["recovery"]
        flowing = ", ".join(f"{s:.2f}" for s in rec["flowing"])
        restore = ", ".join(f"{s:.2f}" for s in rec["restore"])
        rows += [
            ["kill -9 → records at the sink again (s)", flowing, "", ""],
            ["crash noticed → restored run going (s)", restore, "", ""],
        ]
    if "snapshot" in got:
        snap = got["snapshot"]
        rows += [
            [
                "snapshot of a 1,000,000-key store (write+fsync)",
                f"{snap['seconds']:.2f} s, {snap['bytes'] / 1e6:.0f} MB",
                "",
                "",
            ],
            ["reading it back", f"{snap['restore_seconds']:.2f} s", "", ""],
        ]
    if "pipeline_result" in got:
        elements = got["pipeline_result"].summary()["elements"]
        rows += [
            [f"peak RSS of '{name}' (4-process run)", f"{e['peak_rss'] / 1e6:.1f} MB", "", ""]
            for name, e in elements.items()
        ]
    return rows + shards.figure_rows(got) + joins.figure_rows(got) + nodes.figure_rows(got)


def target_rows(got: dict[str, Any]) -> list[list[str]]:
    """The targets table: each target, what this run measured, met or missed."""

    def met(ok: bool) -> str:
        return "met" if ok else "missed"

    def ratio(what: str, key: str, peer: str, minimum: float) -> list[str]:
        value = got[key] / got[peer]
        return [f"{what} ≥ {minimum:.2f}x", f"{value:.2f}x", met(value >= minimum)]

    rows = []
    if "codecs" in got:
        fastest = max(got["codecs"], key=lambda name: got["codecs"][name])
        rows.append(
            [
                f"the default codec ({DEFAULT_CODEC}) is the fastest",
                fastest,
                met(fastest == DEFAULT_CODEC),
            ]
        )
    if "pipeline" in got and "zmq" in got:
        rows.append(
            ratio("4-process pipeline / hand-written 4-process pyzmq", "pipeline", "zmq", 0.90)
        )
    if "fused" in got and "loop" in got:
        rows.append(ratio("fused pipeline / plain Python loop", "fused", "loop", 0.95))
    if "fused" in got and got.get("bytewax"):
        rows.append(ratio("fused pipeline / Bytewax", "fused", "bytewax", 1.0))
    elif "fused" in got and "bytewax" in got:
        rows.append(["fused pipeline / Bytewax ≥ 1.00x", "Bytewax not installed", "n/a"])
    if "latency" in got:
        p99 = got["latency"]["p99_ms"]
        rows.append(
            [
                f"p99 latency ≤ 20 ms at {got['latency_rate']:,.0f} rec/s "
                "(half the 4-process maximum)",
                f"{p99:.2f} ms",
                met(p99 <= 20),
            ]
        )
    if "idle" in got:
        rows.append(
            ["idle element RSS ≤ 60 MB", f"{got['idle'] / 1e6:.1f} MB", met(got["idle"] <= 60e6)]
        )
    for key, what in (("pipeline_ab", "4-process"), ("fused_ab", "fused")):
        if key in got:
            with_, without = got[key]
            value = max(with_) / max(without)
            rows.append(
                [
                    f"{what} pipeline with checkpoints every 1 s / without ≥ 0.90x "
                    f"(best of {ROUNDS} each)",
                    f"{value:.2f}x",
                    met(value >= 0.90),
                ]
            )
    if "recovery" in got and got["recovery"]["flowing"]:
        worst = max(got["recovery"]["flowing"])
        rows.append(
            [
                "records flowing again ≤ 1 s after kill -9 (worst of 3)",
                f"{worst:.2f} s",
                met(worst <= 1),
            ]
        )
    return rows + shards.target_rows(got) + joins.target_rows(got) + nodes.target_rows(got)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        epilog="groups for --only: "
        + "; ".join(f"{name} ({what})" for name, what in GROUPS.items()),
    )
    parser.add_argument(
        "--records",
        type=int,
        default=2_000_000,
        help="records per throughput run (default 2,000,000)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=5.0,
        help="length of the latency run at half the max rate",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="records/s of the latency run (default: half the measured 4-process rate)",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="run only these groups, a comma list (e.g. zmq,pipeline); see below",
    )
    args = parser.parse_args(argv)
    try:
        groups = parse_only(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    if "latency" in groups and args.latency_rate is None and "pipeline" not in groups:
        groups = parse_only(",".join([*groups, "pipeline"]))
    n = args.records
    got = measure(groups, n, args.latency_rate, args.latency_seconds)
    pipelines = {"zmq", "pipeline", "pipeline_nosnap", "loop", "fused", "fused_nosnap", "bytewax"}
    work = (
        f"source → map → filter → sink, {n:,} records per run, " if pipelines & set(groups) else ""
    )
    print(f"\ndatablox benchmark: {work}{os.cpu_count()} CPUs\n")
    print(table(["figure", "value", "vs raw", "vs Bytewax"], figure_rows(got)))
    targets = target_rows(got)
    if targets:
        print()
        print(table(["target", "this run", "met"], targets))
    if got.get("shards_io"):
        print("\nautoscale I/O timeline (records/s into the shard over the last 2 s)\n")
        print(table(["s", "members", "records/s"], shards.timeline_rows(got["shards_io"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
