"""Using deployed care-takers: run a topology on them, ask them for their status."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import zmq

from datablox.errors import RunError
from datablox.master.cluster import Cluster
from datablox.master.hosts import HostSpec
from datablox.master.service import Display, Run, RunOptions, RunResult
from datablox.security import ClientKeys

#: Seconds the care-takers of a hosts file get to answer a hello.
CONNECT_TIMEOUT = 15.0


def run_on_nodes(
    tradecraft: dict[str, Any],
    options: RunOptions,
    display: Display,
    hosts: Sequence[HostSpec],
    keys: Path,
    interrupted: Callable[[], int] = lambda: 0,
) -> RunResult:
    """Run on the care-takers of ``hosts`` (deployed with ``datablox-master deploy``)."""
    options.validate()
    client = ClientKeys.load(keys)
    zctx = zmq.Context()
    cluster = Cluster(client, zctx)
    try:
        for host in hosts:
            cluster.connect(host.endpoint)
        cluster.wait_for_nodes(len(hosts), CONNECT_TIMEOUT)
        # their first load figures come with their first heartbeat
        deadline = time.monotonic() + 2.0
        while any(not link.figures for link in cluster.links) and time.monotonic() < deadline:
            cluster.recv(100)
        run = Run(cluster, tradecraft, options, display, interrupted, shared=False)
        for reason in run.plan.reasons:
            display.log(f"placed {reason}")
        return run.execute()
    finally:
        cluster.close()
        zctx.destroy(linger=0)


def node_status(
    hosts: Sequence[HostSpec], keys: Path, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Each host's answer to ``status`` (node figures, runs, processes), or why none came."""
    client = ClientKeys.load(keys)
    zctx = zmq.Context()
    cluster = Cluster(client, zctx)
    answers: dict[str, dict[str, Any]] = {}
    try:
        links = {cluster.connect(h.endpoint).endpoint: h for h in hosts}
        for link in cluster.links:
            cluster._send(link, {"op": "status"})
        deadline = time.monotonic() + timeout
        while len(answers) < len(hosts) and time.monotonic() < deadline:
            msg = cluster.recv(100)
            if msg is not None and msg["op"] == "status":
                link = cluster.by_name[msg["node"]]
                answers[links[link.endpoint].name] = msg
    finally:
        cluster.close()
        zctx.destroy(linger=0)
    results = []
    for host in hosts:
        answer = answers.get(host.name)
        if answer is None:
            results.append(
                {
                    "name": host.name,
                    "endpoint": host.endpoint,
                    "up": False,
                    "error": f"no answer within {timeout:g} s (not running, unreachable, "
                    "or this client's key is not in its allow-list)",
                }
            )
            continue
        figures = answer.get("figures", {})
        results.append(
            {
                "name": host.name,
                "endpoint": host.endpoint,
                "up": True,
                "node": answer.get("node"),
                "version": answer.get("version"),
                "pid": answer.get("pid"),
                "slots": answer.get("slots"),
                "cpus": answer.get("cpus") or figures.get("cores"),
                **{k: figures.get(k) for k in ("cpu_used", "mem_used", "mem_total", "loadavg")},
                "runs": answer.get("runs", {}),
            }
        )
    return results


def check_registered(hosts: Sequence[HostSpec], keys: Path) -> list[str]:
    """Connect to each deployed care-taker; the problems (empty: every one answered)."""
    results = node_status(hosts, keys, timeout=CONNECT_TIMEOUT)
    problems = []
    for r in results:
        if not r["up"]:
            problems.append(f"host '{r['name']}' ({r['endpoint']}): {r['error']}")
        elif r["node"] != r["name"]:
            problems.append(f"host '{r['name']}': the care-taker there calls itself '{r['node']}'")
    if problems and all(not r["up"] for r in results):
        problems.append("see ROOT/caretaker.log on the hosts")
    return problems


def require_nodes(path: Path | None) -> list[HostSpec]:
    from datablox.master.hosts import load_hosts

    if path is None:
        raise RunError("no hosts file given", "pass --nodes HOSTS_FILE (see docs/nodes.md)")
    return load_hosts(path)
