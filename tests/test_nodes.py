"""Many nodes: care-takers deployed over SSH on three hosts (network namespaces with their
own addresses and OpenSSH servers), a topology spanning them, a host's link cut mid-run,
a rogue client refused.

The hosts are made once for the module (deploying installs a virtualenv on each) and
removed at its end, whatever happened.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
import pytest
import zmq

from datablox.master.cluster import Cluster
from datablox.security import ClientKeys, KeyPair, make_keys
from tests.conftest import console_script
from tests.hosts import Host, Hosts, can_make_hosts
from tests.test_chaos import generated, read_lines

pytestmark = [
    pytest.mark.skipif(can_make_hosts() is not None, reason=str(can_make_hosts())),
    pytest.mark.timeout(600),
]

MASTER = console_script("datablox-master")


@dataclass
class Deployed:
    hosts: Hosts
    hosts_file: Path
    keys: Path

    def master(self, *args: str, timeout: float = 100) -> subprocess.CompletedProcess[str]:
        """Run ``datablox-master ARGS``; on a timeout, fail with what it printed so far."""
        try:
            return subprocess.run(
                [MASTER, *args], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"datablox-master {args[0]} took over {timeout:g} s:\n{exc.stdout}\n{exc.stderr}"
            )

    def on_nodes(self) -> list[str]:
        """The options that point a master command at the deployed nodes."""
        return ["--nodes", str(self.hosts_file), "--keys", str(self.keys)]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts.hosts if h.name == name)

    def element_pids(self, host: Host) -> list[int]:
        found = []
        for pid in self.hosts.pids(host):
            try:
                if "datablox.runtime.process" in " ".join(psutil.Process(pid).cmdline()):
                    found.append(pid)
            except psutil.Error:
                pass
        return found


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    hosts = Hosts(3)
    try:
        keys = hosts.tmp / "keys"
        make_keys(keys)
        d = Deployed(hosts, hosts.write_hosts_file(cpus=1), keys)
        done = d.master("deploy", str(d.hosts_file), "--keys", str(keys), timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 care-taker(s) deployed and answering" in done.stdout
        yield d
        done = d.master("undeploy", str(d.hosts_file))
        assert done.returncode == 0, done.stderr
        for host in hosts.hosts:
            assert not (host.root / "node").exists()
    finally:
        hosts.close()


def test_status_shows_every_node_and_a_redeploy_upgrades_in_place(deployed: Deployed) -> None:
    done = deployed.master("status", *deployed.on_nodes(), "--json")
    assert done.returncode == 0, done.stderr
    nodes = orjson.loads(done.stdout)
    assert [(n["name"], n["up"], n["cpus"]) for n in nodes] == [
        ("h1", True, 1),
        ("h2", True, 1),
        ("h3", True, 1),
    ]
    pids = {n["name"]: n["pid"] for n in nodes}
    done = deployed.master(
        "deploy", str(deployed.hosts_file), "--keys", str(deployed.keys), timeout=600
    )
    assert done.returncode == 0, done.stderr
    nodes = orjson.loads(deployed.master("status", *deployed.on_nodes(), "--json").stdout)
    assert all(n["up"] for n in nodes)
    # a new care-taker process on every host
    assert all(n["pid"] != pids[n["name"]] for n in nodes)
    table = deployed.master("status", *deployed.on_nodes())
    assert table.returncode == 0 and "h3" in table.stdout and "up" in table.stdout


def test_a_client_with_an_unknown_key_is_refused_and_logged(deployed: Deployed) -> None:
    real = ClientKeys.load(deployed.keys)
    rogue = ClientKeys(KeyPair.generate(), real.node_public)  # knows the node key, not allowed
    zctx = zmq.Context()
    cluster = Cluster(rogue, zctx)
    try:
        host = deployed.host("h1")
        link = cluster.connect(f"tcp://{host.address}:7301")
        cluster._send(link, {"op": "status"})
        cluster._send(link, {"op": "launch", "run": "rogue", "processes": []})
        deadline = time.monotonic() + 3
        answers = []
        while time.monotonic() < deadline:
            msg = cluster.recv(100)
            if msg is not None:
                answers.append(msg)
        assert answers == []
    finally:
        cluster.close()
        zctx.destroy(linger=0)
    log = host.root / "node" / "caretaker.log"
    deadline = time.monotonic() + 10
    while "refused a client" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the care-taker's log with a deadline
    line = next(x for x in log.read_text().splitlines() if "refused a client" in x)
    assert f"from {deployed.hosts.subnet}.1" in line
    assert rogue.own.public.decode() in line
    assert not (host.root / "node" / "runs" / "rogue").exists()


TRANSFORM = '''
from datablox import Element, push_in, push_out
from helper import FACTOR  # in a folder sent with --ship


class Tag(Element):
    """A user's own class, in a module next to the .topo file (shipped to the hosts)."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port, record):
        self.emit({"id": record["id"], "key": record["key"], "v": record["value"] * FACTOR})
'''

RECORDS = 60_000
RATE = 6_000


def test_a_topology_spans_three_hosts_and_survives_losing_one(
    deployed: Deployed, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    (tmp_path / "usermod.py").write_text(TRANSFORM)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "helper.py").write_text("FACTOR = 2\n")
    topo = tmp_path / "spread.topo"
    topo.write_text(
        f"""
        topology spread {{
            element src = Generate(count={RECORDS}, keys=20, seed=3, rate={RATE}) on h1
            element tag = usermod:Tag() on h2
            element out = JsonLinesSink(path="{out}") on h3
            src -> tag -> out
        }}
        """
    )
    summary = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [
            MASTER,
            "run",
            str(topo),
            *deployed.on_nodes(),
            "--heartbeat-timeout",
            "2",
            "--display",
            "plain",
            "--summary-json",
            str(summary),
            "--run-dir",
            str(tmp_path / "run"),
            "--ship",
            str(tmp_path / "extra"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    h2 = deployed.host("h2")
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 200_000):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no output within 60 s:\n" + "".join(lines)
            time.sleep(0.05)  # polling the sink's file with a deadline
        on_h2 = deployed.element_pids(h2)
        assert on_h2, "no element process runs on h2"
        # its CPU budget: the care-taker runs element processes on one core
        assert len(psutil.Process(on_h2[0]).cpu_affinity() or []) == 1
        deployed.hosts.cut(h2)
        cut_at = time.monotonic()
        # the care-taker on h2 stops the run's processes there when its lease runs out
        while deployed.element_pids(h2):
            assert time.monotonic() - cut_at < 10, "h2's elements outlived their lease"
            time.sleep(0.05)  # polling for the fenced processes to be gone, with a deadline
        while not any("declared lost" in x for x in lines):
            assert time.monotonic() - cut_at < 20, "".join(lines)
            time.sleep(0.05)  # polling the run's log with a deadline
        deployed.hosts.heal(h2)
        proc.wait(timeout=120)
    finally:
        deployed.hosts.heal(h2)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
    text = "".join(lines)
    assert proc.returncode == 0, text
    expected = [
        {"id": r["id"], "key": r["key"], "v": r["value"] * 2} for r in generated(RECORDS, 20, 3)
    ]
    assert read_lines(out) == expected
    figures = orjson.loads(summary.read_bytes())
    assert figures["checkpoints"]["lost_nodes"] == ["h2"]
    assert figures["checkpoints"]["restores"] >= 1
    assert figures["elements"]["tag"]["node"] in ("h1", "h3")
    assert "node 'h2' missed heartbeats for 2 s: declared lost" in text
    assert "process p1-tag (tag) moves from 'h2' to" in text
    # nothing of the run is left on any host
    for host in deployed.hosts.hosts:
        assert deployed.element_pids(host) == []


def test_a_shards_members_spread_over_hosts_and_move_partitions_between_them(
    deployed: Deployed, tmp_path: Path
) -> None:
    from tests.test_shards import COUNT, KEYS, expected_counts, read

    out = tmp_path / "counts.jsonl"
    topo = tmp_path / "keyed.topo"
    topo.write_text(
        f"""
        topology keyed {{
            element src = Generate(count={COUNT}, rate=10000, keys={KEYS}) on h1
            element counts = KeyCount(key="key") shard(min=1, max=4, key="key")
            element out = JsonLinesSink(path="{out}") on h3
            src.out -> counts.in
            counts.out -> out.in
        }}
        """
    )
    summary = tmp_path / "summary.json"
    done = deployed.master(
        "run",
        str(topo),
        *deployed.on_nodes(),
        "--no-autoscale",
        "--reshard",
        "counts:members=3@8000",
        "--reshard",
        "counts:move=16@30000",
        "--display",
        "plain",
        "--summary-json",
        str(summary),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = read(out)
    assert {r["key"]: r["count"] for r in rows} == expected_counts()
    assert len(rows) == KEYS
    figures = orjson.loads(summary.read_bytes())
    nodes = {figures["elements"][f"counts#{i}"]["node"] for i in (1, 2, 3)}
    assert nodes == {"h1", "h2", "h3"}  # one member per host
    assert figures["shards"]["counts"]["moves"]  # partitions were handed between hosts
