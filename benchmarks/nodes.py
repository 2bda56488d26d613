"""Benchmarks of many nodes: a pipeline spread over three hosts (network namespaces joined
by veth pairs) against the same pipeline on one of them, the time from a host's cut to
records flowing again, and the cost of CURVE on the control and data planes.

Needs root and openssh-server, as the multi-host tests do. The three hosts share this
machine's cores: spreading cannot add CPU here, so the comparison measures what the
network hops cost.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import zmq

from benchmarks.pipeline import ROOT, chain, pipeline_chain
from datablox.master import deploy as deploying
from datablox.master.display import QuietDisplay
from datablox.master.hosts import HostSpec, load_hosts
from datablox.master.nodes import run_on_nodes
from datablox.master.service import RunOptions
from datablox.security import KeyPair, connect_curve, make_keys, serve_curve
from tests.hosts import Hosts

#: records of each pipeline run, and runs of each placement (alternating)
RECORDS = 2_000_000
ROUNDS = 3


@dataclass
class Cluster:
    hosts: Hosts
    specs: list[HostSpec]
    keys: Path


@contextmanager
def deployed() -> Iterator[Cluster]:
    hosts = Hosts(3)
    try:
        keys = hosts.tmp / "keys"
        make_keys(keys)
        specs = load_hosts(hosts.write_hosts_file(cpus=2))
        errors = deploying.deploy(specs, keys, lambda _: None)
        if errors:
            raise RuntimeError("; ".join(errors))
        yield Cluster(hosts, specs, keys)
        deploying.undeploy(specs, lambda _: None)
    finally:
        hosts.close()


class Log(QuietDisplay):
    """Keeps the run's log lines with the time each came."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def log(self, text: str) -> None:
        self.lines.append((time.monotonic(), text))

    def when(self, part: str) -> float | None:
        return next((t for t, line in self.lines if part in line), None)


def pipeline(cluster: Cluster, spread: bool, encrypt: bool = False) -> float:
    """Records/s of Generate → Map → Filter → Count, one process each: on h1, h2, h3, h1
    (spread) or all on h1."""
    tc = pipeline_chain("nodes_bench", RECORDS)
    for element, node in zip(tc["elements"], ["h1", "h2", "h3", "h1"], strict=True):
        element["node"] = node if spread else "h1"
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(fusion="off", run_dir=Path(tmp), encrypt_data=encrypt)
        result = run_on_nodes(tc, options, QuietDisplay(), cluster.specs, cluster.keys)
    if result.exit_code != 0:
        raise RuntimeError(f"pipeline run failed: {result.problems}")
    return RECORDS / result.elapsed


def spread_vs_one_host(cluster: Cluster) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {"one_host": [], "spread": [], "spread_encrypted": []}
    for _ in range(ROUNDS):
        got["one_host"].append(pipeline(cluster, spread=False))
        got["spread"].append(pipeline(cluster, spread=True))
        got["spread_encrypted"].append(pipeline(cluster, spread=True, encrypt=True))
    return got


LOSS_RECORDS = 120_000
LOSS_RATE = 10_000
TIMEOUT = 2.0


def host_loss(cluster: Cluster) -> dict[str, Any]:
    """Generate (h1) → Map (h2) → JsonLinesSink (h3) at 10,000 records/s; h2's link is cut
    at 3 s. Times from the cut to the loss being declared, and from the declaration to the
    first record the sink writes after its restore; the output is checked exactly."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        tc = chain(
            "loss_bench",
            [
                (
                    "src",
                    "Generate",
                    {"count": LOSS_RECORDS, "keys": 10, "seed": 2, "rate": LOSS_RATE},
                ),
                ("map", "Map", {"set": {"double": "value * 2"}}),
                ("sink", "JsonLinesSink", {"path": str(out)}),
            ],
        )
        for element, node in zip(tc["elements"], ["h1", "h2", "h3"], strict=True):
            element["node"] = node
        log = Log()
        options = RunOptions(run_dir=Path(tmp) / "run", heartbeat_timeout=TIMEOUT)
        outcome: list[Any] = []
        runner = threading.Thread(
            target=lambda: outcome.append(
                run_on_nodes(tc, options, log, cluster.specs, cluster.keys)
            )
        )
        runner.start()
        h2 = cluster.hosts.hosts[1]
        sizes: list[tuple[float, int]] = []
        try:
            deadline = time.monotonic() + 60
            while not (out.exists() and out.stat().st_size > 0):
                if not runner.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the host-loss run wrote nothing: {log.lines}")
                time.sleep(0.01)  # polling the sink's file until the data flows
            time.sleep(3.0)  # let the pipeline run for 3 s before the cut
            cluster.hosts.cut(h2)
            cut_at = time.monotonic()
            # the sink's file: truncated to its checkpoint at the restore, then growing again
            while runner.is_alive():
                sizes.append((time.monotonic(), out.stat().st_size))
                time.sleep(0.005)  # sampling the file's size
        finally:
            runner.join()
            cluster.hosts.heal(h2)
        result = outcome[0]
        declared = log.when("declared lost")
        if result.exit_code != 0 or declared is None:
            raise RuntimeError(f"host-loss run failed: {result.problems} {log.lines}")
        after = [(t, s) for t, s in sizes if t >= declared]
        low = min(s for _, s in after)
        low_at = next(t for t, s in after if s == low)
        flowing = next(t for t, s in after if t > low_at and s > low)
        rng = random.Random(2)
        expected = [
            {
                "id": i,
                "key": f"k{i % 10}",
                "value": (v := round(rng.random(), 6)),
                "ts": i,
                "double": v * 2,
            }
            for i in range(LOSS_RECORDS)
        ]
        written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        return {
            "declared_after_cut": declared - cut_at,
            "flowing_after_declared": flowing - declared,
            "started_after_declared": result.checkpoints["recovery_seconds"][0],
            "exact": written == expected,
            "records": len(written),
        }


def control_curve(messages: int = 20_000, size: int = 512) -> dict[str, float]:
    """Round trips/s of control-sized messages (DEALER → ROUTER → back) over loopback TCP,
    plain and with CURVE, 100 in flight."""
    got = {}
    for name in ("plain", "curve"):
        zctx = zmq.Context()
        server, client = KeyPair.generate(), KeyPair.generate()
        router, dealer = zctx.socket(zmq.ROUTER), zctx.socket(zmq.DEALER)
        if name == "curve":
            serve_curve(router, server, "bench")
            connect_curve(dealer, client, server.public)
        router.bind("tcp://127.0.0.1:*")
        dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))
        body = b"x" * size
        dealer.send(body)
        router.send_multipart(router.recv_multipart())
        dealer.recv()
        started = time.perf_counter()
        sent = received = 0
        while received < messages:
            while sent < messages and sent - received < 100:
                dealer.send(body)
                sent += 1
            while router.poll(0):
                router.send_multipart(router.recv_multipart())
            while dealer.poll(0):
                dealer.recv()
                received += 1
        got[name] = messages / (time.perf_counter() - started)
        router.close(0)
        dealer.close(0)
        zctx.term()
    return got


def measure() -> dict[str, Any]:
    got: dict[str, Any] = {"control": control_curve()}
    with deployed() as cluster:
        got["pipeline"] = spread_vs_one_host(cluster)
        got["loss"] = host_loss(cluster)
    return got


def figure_rows(got: dict[str, Any]) -> list[list[str]]:
    nodes = got.get("nodes")
    if not nodes:
        return []
    p, loss, c = nodes["pipeline"], nodes["loss"], nodes["control"]

    def runs(key: str) -> str:
        return ", ".join(f"{r:,.0f}" for r in p[key]) + " rec/s"

    return [
        [f"pipeline, {RECORDS:,} records, 4 processes on one host (h1)", runs("one_host"), "", ""],
        ["the same pipeline spread over h1, h2, h3 (veth + bridge)", runs("spread"), "", ""],
        ["spread, data plane encrypted (CURVE)", runs("spread_encrypted"), "", ""],
        ["control round trips, 512 B, plain", f"{c['plain']:,.0f}/s", "", ""],
        ["control round trips, 512 B, CURVE", f"{c['curve']:,.0f}/s", "", ""],
        [
            "host cut → declared lost (heartbeat timeout 2 s)",
            f"{loss['declared_after_cut']:.2f} s",
            "",
            "",
        ],
        [
            "declared lost → every element restored and started",
            f"{loss['started_after_declared']:.2f} s",
            "",
            "",
        ],
        [
            "declared lost → the sink writes again",
            f"{loss['flowing_after_declared']:.2f} s",
            "",
            "",
        ],
    ]


def target_rows(got: dict[str, Any]) -> list[list[str]]:
    nodes = got.get("nodes")
    if not nodes:
        return []
    p, loss = nodes["pipeline"], nodes["loss"]
    ratio = max(p["spread"]) / max(p["one_host"])
    flowing = loss["flowing_after_declared"]
    return [
        [
            "pipeline spread over hosts ≥ 70% of one host (best of each)",
            f"{ratio:.0%}",
            "met" if ratio >= 0.7 else "missed",
        ],
        [
            "records flowing ≤ 5 s after the host is declared lost, outputs exact",
            f"{flowing:.2f} s, exact={loss['exact']}",
            "met" if flowing <= 5 and loss["exact"] else "missed",
        ],
    ]


__all__ = ["ROOT", "figure_rows", "measure", "target_rows"]
