"""Running a topology on this machine alone: a master plus an embedded care-taker thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from datablox.caretaker.agent import CareTaker
from datablox.master.cluster import Cluster
from datablox.master.service import Display, Run, RunOptions, RunResult
from datablox.security import ClientKeys, KeyPair


@contextmanager
def local_cluster(
    zctx: zmq.Context,  # type: ignore[type-arg]
    root: Path | None = None,
) -> Iterator[tuple[Cluster, CareTaker]]:
    """A care-taker ('local') in a thread of this process, and a master connected to it.

    They talk over their CURVE-protected control protocol, as across hosts,
    with key pairs made for this run alone.
    """
    node_keys, client_keys = KeyPair.generate(), KeyPair.generate()
    caretaker = CareTaker(
        "local", node_keys, {client_keys.public}, root=root, zctx=zctx, embedded=True
    )
    thread = threading.Thread(target=caretaker.serve, name="caretaker", daemon=True)
    thread.start()
    cluster = Cluster(ClientKeys(client_keys, node_keys.public), zctx)
    try:
        cluster.connect(caretaker.endpoint)
        cluster.wait_for_nodes(1, timeout=30)
        yield cluster, caretaker
    finally:
        cluster.send_node("local", {"op": "shutdown"})
        thread.join(timeout=15)
        if thread.is_alive():
            caretaker.stop_event.set()
            thread.join(timeout=5)
        cluster.close()


def run_embedded(
    tradecraft: dict[str, Any],
    options: RunOptions,
    display: Display,
    interrupted: Callable[[], int] = lambda: 0,
) -> RunResult:
    """Start a master and a local care-taker (a thread), run, and tear both down."""
    options.validate()
    zctx = zmq.Context()
    try:
        with local_cluster(zctx) as (cluster, _):
            return Run(cluster, tradecraft, options, display, interrupted).execute()
    finally:
        zctx.destroy(linger=0)
