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
from datablox.codec import DEFAULT_CODEC, get_codec


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

    print(f"\nCodecs (encode + decode of 256-record batches; default: {get_codec().name})\n")
    best = max(codecs.values())
    print(
        table(
            ["codec", "records/s", "vs fastest"],
            [
                [
                    name + (" (default)" if name == DEFAULT_CODEC else ""),
                    f"{rate:,.0f}",
                    f"{rate / best:.2f}",
                ]
                for name, rate in sorted(codecs.items(), key=lambda kv: -kv[1])
            ],
        )
    )

    def vs_peer(rate: float) -> str:
        return f"{rate / peer:.2f}x" if peer else "n/a"

    rows = [
        ["raw pyzmq PUSH/PULL, 1 hop", f"{raw:,.0f}", "1.00", vs_peer(raw), "limit"],
        [
            "raw 1 hop, records built as sent",
            f"{raw_fresh:,.0f}",
            f"{raw_fresh / raw:.2f}",
            vs_peer(raw_fresh),
            "limit with Generate's record cost",
        ],
        [
            "datablox pipeline, 4 processes",
            f"{split:,.0f}",
            f"{split / raw:.2f}",
            vs_peer(split),
            "target >= 0.50 of raw",
        ],
        [
            "datablox pipeline, fused",
            f"{fused:,.0f}",
            f"{fused / raw:.2f}",
            vs_peer(fused),
            "target >= 1.0x Bytewax",
        ],
        [
            f"Bytewax {bytewax_version()}, same work",
            f"{peer:,.0f}" if peer else "not installed",
            f"{peer / raw:.2f}" if peer else "n/a",
            "1.00x" if peer else "n/a",
            "peer",
        ],
    ]
    print(f"\nThroughput (source → map → filter → sink, {n:,} records, {os.cpu_count()} CPUs)\n")
    print(table(["pipeline", "records/s", "vs raw", "vs Bytewax", "note"], rows))
    peaks = split_result.summary()["elements"]
    print("\nLatency and memory\n")
    print(
        table(
            ["figure", "value", "target"],
            [
                ["rate for the latency run (half the 4-process max)", f"{half:,.0f} records/s", ""],
                ["p50 record latency", f"{lat['p50_ms']:.2f} ms", ""],
                ["p99 record latency", f"{lat['p99_ms']:.2f} ms", "<= 20 ms"],
                ["max record latency", f"{lat['max_ms']:.2f} ms", ""],
                ["idle element RSS", f"{idle / 1e6:.1f} MB", "<= 60 MB"],
                *[
                    [f"peak RSS of '{name}' (4-process run)", f"{e['peak_rss'] / 1e6:.1f} MB", ""]
                    for name, e in peaks.items()
                ],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
