"""Benchmarks of the JOIN family: keyed enrichment against Bytewax, a split under
congestion, and the pause of a dataset swap."""

from __future__ import annotations

import multiprocessing
import random
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.pipeline import ROOT, run
from datablox.dsl.compiler import compile_source

#: records of the throughput run, and rows of its table
RECORDS = 1_000_000
ROWS = 10_000


def write_table(path: Path, rows: int = ROWS, version: int = 1) -> None:
    """A table of ``rows`` rows keyed ``code`` = k0..k{rows-1}: each stream key has one row."""
    path.write_bytes(
        b"\n".join(
            orjson.dumps({"code": f"k{i}", "label": f"v{version}-{i}", "group": i % 97})
            for i in range(rows)
        )
        + b"\n"
    )


def _compiled(text: str, folder: Path) -> dict[str, Any]:
    path = folder / "bench.topo"
    path.write_text(text)
    tc = compile_source(text, str(path)).tradecraft
    tc["search_path"] = [*tc.get("search_path", []), ROOT]
    return tc


# ---- keyed enrichment: datablox against Bytewax -------------------------------------------
def datablox_enrich(records: int = RECORDS, rows: int = ROWS, max_members: int = 4) -> dict:
    """Records/s of Generate(records, keys=rows) → Join on a ``rows``-row table → Count,
    the JOIN shard autoscaled up to ``max_members``; the output count is checked."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_table(folder / "table.jsonl", rows)
        text = f"""
        topology join_bench {{
            element src  = Generate(count={records}, keys={rows}, seed=1)
            element geo  = Join(key="key", dataset_key="code", path="{folder / "table.jsonl"}",
                                max={max_members})
            element sink = Count(path="{folder / "count.json"}")
            src -> geo -> sink
        }}
        """
        result = run(_compiled(text, folder), "auto", folder / "run")
        counted = orjson.loads((folder / "count.json").read_bytes())["count"]
        shard = result.summary()["shards"]["geo/join"]
    if counted != records:
        raise RuntimeError(f"datablox join: {counted:,} records out of {records:,}")
    return {
        "rate": records / result.elapsed,
        "seconds": result.elapsed,
        "members": max((m for _, m, _ in shard["timeline"]), default=1),
    }


def _bytewax_flow(records: int, rows: int, counts: Any) -> Any:
    """Bytewax keyed enrichment: the table's rows, then the stream, through one input;
    ``stateful_map`` per key holds the key's row and enriches the stream records."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import TestingSource

    def items() -> Any:
        for i in range(rows):
            yield ("row", {"code": f"k{i}", "label": f"v1-{i}", "group": i % 97})
        rng = random.Random(1)
        for i in range(records):
            yield (
                "rec",
                {"id": i, "key": f"k{i % rows}", "value": round(rng.random(), 6), "ts": i},
            )

    def key(item: tuple[str, dict[str, Any]]) -> str:
        tag, r = item
        return str(r["code"] if tag == "row" else r["key"])

    def enrich(
        state: dict[str, Any] | None, item: tuple[str, dict[str, Any]]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        tag, r = item
        if tag == "row":
            return r, None
        if state is None:
            return None, None  # an inner join: no row, no output
        return state, {**r, "match": state, "dataset_version": 1}

    class _Count(StatelessSinkPartition[Any]):
        def __init__(self, index: int) -> None:
            self.index = index

        def write_batch(self, items: list[Any]) -> None:
            counts[self.index] += len(items)

    class _Sink(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
            return _Count(worker_index)

    flow = Dataflow("join_bench")
    stream = op.input("in", flow, TestingSource(items(), batch_size=256))
    keyed = op.key_on("key", stream, key)
    enriched = op.stateful_map("enrich", keyed, enrich)
    out = op.filter_map("matched", enriched, lambda kv: kv[1])
    op.output("out", out, _Sink())
    return flow


def _bytewax_process(records: int, rows: int, addresses: list[str], proc_id: int, q: Any) -> None:
    from bytewax.testing import cluster_main

    counts = [0] * len(addresses)
    cluster_main(_bytewax_flow(records, rows, counts), addresses, proc_id)
    q.put(sum(counts))


def bytewax_enrich(records: int = RECORDS, rows: int = ROWS, processes: int = 1) -> dict:
    """Records/s of the same enrichment in Bytewax: ``run_main`` (1 worker) for one process,
    else ``cluster_main`` in ``processes`` processes of 1 worker each on loopback."""
    if processes == 1:
        from bytewax.testing import run_main

        counts = [0]
        flow = _bytewax_flow(records, rows, counts)
        started = time.perf_counter()
        run_main(flow)
        elapsed = time.perf_counter() - started
        counted = counts[0]
    else:
        ports = []
        for _ in range(processes):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        addresses = [f"127.0.0.1:{p}" for p in ports]
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        procs = [
            ctx.Process(target=_bytewax_process, args=(records, rows, addresses, i, q))
            for i in range(processes)
        ]
        started = time.perf_counter()
        for p in procs:
            p.start()
        counted = sum(q.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - started
        for p in procs:
            p.join(timeout=30)
    if counted != records:
        raise RuntimeError(f"bytewax join ({processes} process(es)): {counted:,} of {records:,}")
    return {"rate": records / elapsed, "seconds": elapsed}


# ---- a split under congestion -----------------------------------------------------------
def _family(src: str, member: str, path: Path, sink: str, shard: str, extra: str = "") -> str:
    """The JOIN family written out (the ``Join`` group's wiring) with another member class."""
    return f"""
    topology join_bench {{
        element src        = {src}
        {extra}
        element prejoin    = PreJoin(key="key")
        element enrichment = Enrichment(path="{path}", key="key", dataset_key="code", watch=0.1)
        element join       = {member} shard({shard}, key="key")
        element postjoin   = PostJoin()
        element sink       = {sink}
        enrichment -> join.dataset
        join -> postjoin -> sink
        enrichment.stream ?> prejoin.state
    """


def split(feed: float = 5000.0, seconds: float = 40.0, ms: float = 0.5) -> dict[str, Any]:
    """JOIN members that burn ``ms`` of CPU per record, fed more than they take.

    First one member alone (``max=1``), then the autoscaled shard (``max=2``: only the first
    split). Figures: records/s out of the JOIN in the second half of the feed (counted
    at the sink), the split's decision time, and the time from the decision until the
    last moved partition was switched to the new member (the split has taken effect)."""

    def one(maximum: int) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_table(folder / "table.jsonl")
            text = _family(
                f"Generate(count={int(feed * seconds)}, rate={feed}, keys={ROWS}, seed=1)",
                f'benchmarks.elements:CostlyJoin(key="key", ms={ms})',
                folder / "table.jsonl",
                f'benchmarks.elements:Arrivals(path="{folder / "arrivals.json"}")',
                f"min=1, max={maximum}",
            )
            text += "src -> prejoin -> join.in\n}\n"
            result = run(_compiled(text, folder), "off", folder / "run")
            shard = result.summary()["shards"]["join"]
            arrivals = orjson.loads((folder / "arrivals.json").read_bytes())
        first = arrivals[0][0]
        start, end = first + seconds / 2, first + seconds
        done = sum(n for t, n in arrivals if start <= t < end)
        splits = [d for d in shard["decisions"] if d["planned"] > d["observed"]]
        decided = splits[0]["at"] if splits else None
        effective = None
        if decided is not None and shard["moves"]:
            effective = max(m["at"] + m["seconds"] for m in shard["moves"]) - decided
        return {
            "rate": done / (end - start),
            "members": max((m for _, m, _ in shard["timeline"]), default=1),
            "decided_at": decided,
            "split_seconds": effective,
            "moves": len(shard["moves"]),
            "partitions_moved": sum(m["partitions"] for m in shard["moves"]),
        }

    alone = one(1)
    scaled = one(2)
    return {
        "one_member": alone["rate"],
        **scaled,
        "ratio": scaled["rate"] / max(1.0, alone["rate"]),
    }


# ---- the pause of a dataset swap ----------------------------------------------------------
def swap(rate: float = 5000.0, seconds: float = 12.0) -> dict[str, Any]:
    """A stream at ``rate`` records/s (stamped) through a JOIN of 2 members watching its
    table file; at half time a new table replaces the file. Latency of the records
    emitted in the 2 s before the file changed, and from the change until 1 s after the
    last record enriched from version 1 (the new version's rows loading, the switch,
    the old version dropped)."""
    count = int(rate * seconds)
    at = count // 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table, new = folder / "table.jsonl", folder / "next.jsonl"
        write_table(table)
        write_table(new, version=2)
        text = _family(
            f"Generate(count={count}, rate={rate}, keys={ROWS}, seed=1, stamp=true)",
            'JoinMember(key="key")',
            table,
            f'benchmarks.elements:VersionSink(path="{folder / "out.jsonl"}")',
            "min=1, max=2",
            extra=f'element flip = benchmarks.elements:ReplaceAt(at={at}, source="{new}", '
            f'target="{table}")',
        )
        text += "src -> flip -> prejoin -> join.in\n}\n"
        run(
            _compiled(text, folder),
            "off",
            folder / "run",
            autoscale=False,
            reshard=[f"join:members=2@{int(rate)}"],
        )
        rows = [orjson.loads(line) for line in (folder / "out.jsonl").read_bytes().splitlines()]
    if sorted(r[0] for r in rows) != list(range(count)):
        raise RuntimeError("dataset swap: records lost or duplicated")
    changed = next(t for i, t, _, _ in rows if i == at)
    last_v1 = max(t for _, t, _, v in rows if v == 1)
    windows: dict[str, list[float]] = {"before": [], "swap": []}
    for _, t, ms, _ in rows:
        if changed - 2.0 <= t < changed:
            windows["before"].append(ms)
        elif changed <= t <= last_v1 + 1.0:
            windows["swap"].append(ms)
    figures: dict[str, Any] = {"switch_seconds": last_v1 - changed}
    for name, values in windows.items():
        values.sort()
        n = len(values)
        figures[name] = {
            "n": n,
            "p50": values[n // 2] if n else None,
            "p99": values[min(n - 1, int(n * 0.99))] if n else None,
            "max": values[-1] if n else None,
        }
    versions = {v for *_, v in rows}
    figures["versions"] = sorted(versions)
    return figures


# ---- tables -------------------------------------------------------------------------------
def enrich_all(records: int = RECORDS, rows: int = ROWS) -> dict[str, Any]:
    """datablox and both Bytewax configurations, best of two runs each, in one run."""
    from benchmarks.peers import bytewax_available

    got: dict[str, Any] = {"records": records, "rows": rows}
    got["datablox"] = [datablox_enrich(records, rows) for _ in range(2)]
    if bytewax_available():
        got["bytewax_1"] = [bytewax_enrich(records, rows, 1) for _ in range(2)]
        got["bytewax_2"] = [bytewax_enrich(records, rows, 2) for _ in range(2)]
    return got


def _best(runs: list[dict[str, Any]]) -> float:
    return max(r["rate"] for r in runs)


def figure_rows(got: dict[str, Any]) -> list[list[str]]:
    """Rows of the figures table for the JOIN benchmarks."""
    rows: list[list[str]] = []
    enrich = got.get("joins")
    if enrich:
        what = f"{enrich['records']:,} records enriched from a {enrich['rows']:,}-row table"
        for key, label in (
            ("datablox", "datablox Join"),
            ("bytewax_1", "Bytewax stateful_map, 1 worker"),
            ("bytewax_2", "Bytewax stateful_map, 2 processes"),
        ):
            if key in enrich:
                runs = ", ".join(f"{r['rate']:,.0f}" for r in enrich[key])
                extra = (
                    f" ({max(r['members'] for r in enrich[key])} member(s) at most)"
                    if key == "datablox"
                    else ""
                )
                rows.append([f"{what}: {label}{extra}", f"{runs} rec/s", "", ""])
    split = got.get("joins_split")
    if split:
        rows += [
            ["JOIN at 0.5 ms CPU/record: one member", f"{split['one_member']:,.0f} rec/s", "", ""],
            [
                f"JOIN at 0.5 ms CPU/record: after the first split ({split['members']} members)",
                f"{split['rate']:,.0f} rec/s",
                "",
                "",
            ],
            ["JOIN split: decided at (s after start) / took effect", _split_times(split), "", ""],
        ]
    swap = got.get("joins_swap")
    if swap:
        for window, label in (("before", "in the 2 s before"), ("swap", "during")):
            f = swap[window]
            if f["n"]:
                rows.append(
                    [
                        f"dataset swap: latency {label} the swap (p50/p99/max)",
                        f"{f['p50']:.1f} / {f['p99']:.1f} / {f['max']:.1f} ms",
                        "",
                        "",
                    ]
                )
        rows.append(
            [
                "dataset swap: file change → last record of the old version",
                f"{swap['switch_seconds'] * 1000:.0f} ms",
                "",
                "",
            ]
        )
    return rows


def _split_times(split: dict[str, Any]) -> str:
    if split["decided_at"] is None:
        return "no split"
    took = split["split_seconds"]
    return f"{split['decided_at']:.1f} s / " + ("never" if took is None else f"{took:.2f} s")


def target_rows(got: dict[str, Any]) -> list[list[str]]:
    """Rows of the targets table for the JOIN benchmarks: target, this run, met."""

    def met(ok: bool) -> str:
        return "met" if ok else "missed"

    rows: list[list[str]] = []
    enrich = got.get("joins")
    if enrich:
        peers = [_best(enrich[k]) for k in ("bytewax_1", "bytewax_2") if k in enrich]
        if peers:
            value = _best(enrich["datablox"]) / max(peers)
            rows.append(
                [
                    "keyed enrichment ≥ 1.5x the better Bytewax configuration (best of 2 each)",
                    f"{value:.2f}x",
                    met(value >= 1.5),
                ]
            )
        else:
            rows.append(["keyed enrichment ≥ 1.5x Bytewax", "Bytewax not installed", "n/a"])
    swap = got.get("joins_swap")
    if swap:
        worst = swap["swap"]["max"] or 0.0
        rows.append(
            [
                "dataset swap: no record waits more than 50 ms (max latency during the swap)",
                f"{worst:.1f} ms",
                met(worst <= 50),
            ]
        )
    split = got.get("joins_split")
    if split:
        rows.append(
            [
                "JOIN at 0.5 ms CPU/record: after the first split ≥ 1.6x one member",
                f"{split['ratio']:.2f}x",
                met(split["ratio"] >= 1.6),
            ]
        )
    return rows
