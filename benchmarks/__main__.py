"""``python -m benchmarks``: one table of throughput, latency and memory figures.

All figures come from one run on this machine, so ratios compare like with like.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.codecs import measure_codecs
from benchmarks.peers import bytewax_available, bytewax_pipeline, bytewax_version
from benchmarks.pipeline import idle_rss, latency, pipeline_rate
from benchmarks.raw import raw_limit
from datablox.codec import DEFAULT_CODEC


def _row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
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
    args = parser.parse_args(argv)
    n = args.records

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    say("measuring codecs…")
    codecs = measure_codecs()
    say("measuring the raw single-hop limit…")
    raw = raw_limit(n)
    raw_fresh = raw_limit(n, fresh=True)
    say("running the separate-process pipeline…")
    split, split_result = pipeline_rate(n, "off")
    say("running the fused pipeline…")
    fused, _ = pipeline_rate(n, "max")
    peer = None
    if bytewax_available():
        say("running the Bytewax pipeline…")
        peer = bytewax_pipeline(n)
    else:
        say("bytewax is not installed (pip install -e '.[bench]'); skipping the peer")
    half = split / 2
    say(f"measuring latency at {half:,.0f} records/s…")
    lat = latency(half, args.latency_seconds)
    say("measuring idle element memory…")
    idle = idle_rss()

    def vs_peer(rate: float) -> str:
        return f"{rate / peer:.2f}x" if peer else "n/a"

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    def rate_row(what: str, rate: float, target: str = "", ok: str = "") -> list[str]:
        return [what, f"{rate:,.0f} rec/s", f"{rate / raw:.2f}", vs_peer(rate), target, ok]

    fastest = max(codecs, key=lambda name: codecs[name])
    rows = [
        [
            f"codec {name}: encode+decode" + (" (the default)" if name == DEFAULT_CODEC else ""),
            f"{rate:,.0f} rec/s",
            "",
            "",
            "the default is the fastest" if name == DEFAULT_CODEC else "",
            met(fastest == DEFAULT_CODEC) if name == DEFAULT_CODEC else "",
        ]
        for name, rate in sorted(codecs.items(), key=lambda kv: -kv[1])
    ]
    rows += [
        rate_row("raw pyzmq PUSH/PULL, 1 hop (the limit)", raw),
        rate_row("raw 1 hop, records built as sent", raw_fresh),
        rate_row(
            "datablox pipeline, 4 processes", split, ">= 0.50 of raw", met(split / raw >= 0.5)
        ),
        rate_row(
            "datablox pipeline, fused",
            fused,
            ">= 1.0x Bytewax",
            met(bool(peer) and fused >= peer) if peer else "n/a",
        ),
    ]
    if peer:
        rows.append(rate_row(f"Bytewax {bytewax_version()}, same work", peer))
    rows += [
        [
            f"p50 latency at {half:,.0f} rec/s (half the 4-process max)",
            f"{lat['p50_ms']:.2f} ms",
            "",
            "",
            "",
            "",
        ],
        [
            f"p99 latency at {half:,.0f} rec/s",
            f"{lat['p99_ms']:.2f} ms",
            "",
            "",
            "<= 20 ms",
            met(lat["p99_ms"] <= 20),
        ],
        ["idle element RSS", f"{idle / 1e6:.1f} MB", "", "", "<= 60 MB", met(idle <= 60e6)],
    ]
    rows += [
        [f"peak RSS of '{name}' (4-process run)", f"{e['peak_rss'] / 1e6:.1f} MB", "", "", "", ""]
        for name, e in split_result.summary()["elements"].items()
    ]
    print(
        f"\ndatablox benchmark: source → map → filter → sink, {n:,} records per run, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(table(["figure", "value", "vs raw", "vs Bytewax", "target", "met"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
