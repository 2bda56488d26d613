"""The control plane's CURVE keys and ZAP allow-list, and the encrypted data plane option."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from datablox.dsl.compiler import compile_source
from datablox.security import Gate, KeyPair, allowed_keys, connect_curve, make_keys, serve_curve
from tests.conftest import Cluster
from tests.test_chaos import generated, read_lines


def test_keys_are_made_once_and_the_client_key_is_allowed(tmp_path: Path) -> None:
    written = make_keys(tmp_path / "keys")
    assert sorted(p.name for p in written) == [
        "client.key",
        "client.key",
        "client.key_secret",
        "node.key",
        "node.key_secret",
    ]
    assert (tmp_path / "keys" / "node.key_secret").stat().st_mode & 0o777 == 0o600
    assert make_keys(tmp_path / "keys") == []  # kept: deployed care-takers still know them
    client = KeyPair.load(tmp_path / "keys" / "client.key_secret")
    assert allowed_keys(tmp_path / "keys") == {client.public}


def test_the_gate_lets_in_allowed_keys_only_and_reports_each_refusal() -> None:
    zctx = zmq.Context()
    refused: list[tuple[str, str, str]] = []
    gate = Gate(zctx, lambda *r: refused.append(r))
    server, good, bad = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    gate.admit("control", [good.public])
    router = zctx.socket(zmq.ROUTER)
    serve_curve(router, server, "control")
    router.bind("tcp://127.0.0.1:*")
    endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
    got = []
    try:
        for pair in (bad, good):
            dealer = zctx.socket(zmq.DEALER)
            connect_curve(dealer, pair, server.public)
            dealer.connect(endpoint)
            dealer.send(b"hello")
            if router.poll(2000):
                got.append(router.recv_multipart()[1])
            dealer.close(linger=0)
        assert got == [b"hello"]  # the good one's only
        deadline = time.monotonic() + 5
        while not refused and time.monotonic() < deadline:
            time.sleep(0.01)  # the gate reports from its own thread: poll with a deadline
        assert refused[0][0] == "control"
        assert refused[0][1] == "127.0.0.1"
        assert refused[0][2] == bad.public.decode()
        gate.revoke("control", [good.public])
    finally:
        router.close(linger=0)
        gate.stop()
        zctx.term()


def test_an_encrypted_data_plane_delivers_the_same_records(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    text = f"""
    topology secret {{
        element src = Generate(count=20000, keys=7, seed=5)
        element keep = Filter(where="value > 0.25")
        element out = JsonLinesSink(path="{out}")
        src -> keep -> out
    }}
    """
    tc = compile_source(text, str(tmp_path / "secret.topo")).tradecraft
    result = cluster.run(tc, fusion="off", encrypt_data=True)
    assert result.exit_code == 0, result.problems
    assert read_lines(out) == [r for r in generated(20000, 7, 5) if r["value"] > 0.25]
    specs = list((result.run_dir / "specs").glob("*.json"))
    assert len(specs) == 3
    assert all(b'"data_keys"' in spec.read_bytes() for spec in specs)
