"""Hand-written baselines for the pipeline's work: four pyzmq processes, and one Python loop."""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import Connection
from typing import Any

import orjson
import zmq

from benchmarks.work import enrich, keep, records

BATCH = 1024
HWM = 8
#: The end-of-stream marker: an empty message (a batch is never empty).
EOS = b""
STAGES = ("source", "map", "filter", "count")
#: Longest wait for a child's start-up message, its result, or its exit.
WAIT = 60.0


def _forward(push: zmq.Socket, out: list[dict[str, Any]]) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    """Send full batches of ``out``; return what is left over."""
    while len(out) >= BATCH:
        push.send(orjson.dumps(out[:BATCH]))
        out = out[BATCH:]
    return out


def _stage(role: str, total: int, pipe: Connection) -> None:
    """One process of the hand-written pipeline; talks to the parent through ``pipe``."""
    ctx = zmq.Context()
    try:
        pull = push = None
        port: int | None = None
        if role != "source":
            pull = ctx.socket(zmq.PULL)
            pull.setsockopt(zmq.RCVHWM, HWM)
            pull.setsockopt(zmq.LINGER, 0)
            port = pull.bind_to_random_port("tcp://127.0.0.1")
        pipe.send(port)
        downstream = pipe.recv()
        if downstream is not None:
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.SNDHWM, HWM)
            push.setsockopt(zmq.LINGER, 30_000)
            push.connect(downstream)
        pipe.send("ready")
        if role == "source":
            assert push is not None
            pipe.recv()  # "go"
            batch: list[dict[str, Any]] = []
            for record in records(total):
                batch.append(record)
                if len(batch) == BATCH:
                    push.send(orjson.dumps(batch))
                    batch = []
            if batch:
                push.send(orjson.dumps(batch))
            push.send(EOS)
            return
        assert pull is not None
        count = 0
        out: list[dict[str, Any]] = []
        while True:
            payload = pull.recv()
            if payload == EOS:
                break
            got = orjson.loads(payload)
            if role == "count":
                count += len(got)
            elif role == "map":
                assert push is not None
                push.send(orjson.dumps([enrich(r) for r in got]))
            else:
                assert push is not None
                out.extend(r for r in got if keep(r))
                out = _forward(push, out)
        if role == "count":
            pipe.send((count, time.monotonic()))
        else:
            assert push is not None
            if out:
                push.send(orjson.dumps(out))
            push.send(EOS)
    finally:
        ctx.destroy()


def zmq_pipeline(total: int) -> tuple[float, int]:
    """Records/s and records counted of source → map → filter → count in 4 pyzmq processes.

    Timed like datablox's runs: from the moment every process is connected and
    the source is told to go, to the moment the count has seen end-of-stream
    (``time.monotonic`` is one clock for all processes). Both figures leave out
    the processes' exit.
    """
    spawn = mp.get_context("spawn")
    pipes: dict[str, Connection] = {}
    procs: dict[str, Any] = {}
    try:
        for role in STAGES:
            ours, theirs = spawn.Pipe()
            pipes[role] = ours
            procs[role] = spawn.Process(
                target=_stage, args=(role, total, theirs), name=f"zmq-{role}", daemon=True
            )
            procs[role].start()
            theirs.close()
        ports = {role: _receive(pipes[role], role) for role in STAGES}
        for upstream, downstream in zip(STAGES, [*STAGES[1:], None]):
            pipes[upstream].send(
                None if downstream is None else f"tcp://127.0.0.1:{ports[downstream]}"
            )
        for role in STAGES:
            _receive(pipes[role], role)
        go_at = time.monotonic()
        pipes["source"].send("go")
        counted, done_at = _receive(pipes["count"], "count")
        for proc in procs.values():
            proc.join(WAIT)
        return total / (done_at - go_at), counted
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in pipes.values():
            pipe.close()


def _receive(pipe: Connection, role: str) -> Any:
    if not pipe.poll(WAIT):
        raise RuntimeError(f"the hand-written pipeline's {role} process sent nothing in {WAIT} s")
    return pipe.recv()


def python_loop(total: int) -> tuple[float, int]:
    """Records/s and records kept of the same work in one plain loop in this process."""
    started = time.perf_counter()
    count = 0
    for r in records(total):
        r = enrich(r)
        if keep(r):
            count += 1
    elapsed = time.perf_counter() - started
    return total / elapsed, count
