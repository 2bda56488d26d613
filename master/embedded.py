"""Running a topology on this machine alone: a master plus an embedded care-taker thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import zmq

from datablox.caretaker.agent import CareTaker
from datablox.master.service import Display, Master, Run, RunOptions, RunResult


def run_embedded(
    tradecraft: dict[str, Any],
    options: RunOptions,
    display: Display,
    interrupted: Callable[[], int] = lambda: 0,
) -> RunResult:
    """Start a master and a local care-taker (a thread), run, and tear both down.

    Master and care-taker still talk over their ZeroMQ control protocol, as
    they do across hosts.
    """
    options.validate()
    zctx = zmq.Context()
    master = Master("tcp://127.0.0.1:*", zctx)
    caretaker = CareTaker(master.endpoint, node="local", zctx=zctx)
    thread = threading.Thread(target=caretaker.serve, name="caretaker", daemon=True)
    thread.start()
    try:
        master.wait_for_nodes(1, timeout=30)
        return Run(master, tradecraft, options, display, interrupted).execute()
    finally:
        try:
            master.send_node("local", {"op": "shutdown"})
        except zmq.ZMQError:
            caretaker.stop_event.set()
        thread.join(timeout=15)
        if thread.is_alive():
            caretaker.stop_event.set()
            thread.join(timeout=5)
        master.close()
        zctx.destroy(linger=0)
