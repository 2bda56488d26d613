"""The raw limit: one pyzmq PUSH/PULL hop between two processes with the chosen codec."""

from __future__ import annotations

import multiprocessing as mp
import time
from itertools import islice

import zmq

from benchmarks.work import records
from datablox import frames
from datablox.codec import get_codec


def _producer(endpoint: str, total: int, batch: int, codec_name: str, fresh: bool) -> None:
    codec = get_codec(codec_name)
    sample = list(records(batch))
    made = records(total)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 32)
    sock.connect(endpoint)
    seq = 0
    for _ in range(total // batch):
        header = frames.pack_header(frames.DATA, codec.wire_id, 0, 0, seq, batch)
        if fresh:
            sample = list(islice(made, batch))
        sock.send_multipart([header, codec.encode(sample)], copy=False)
        seq += 1
    sock.send_multipart([frames.pack_header(frames.EOS, codec.wire_id, 0, 0, seq, 0), b""])
    sock.close(linger=-1)
    ctx.term()


def raw_limit(
    total: int, batch: int = 256, codec_name: str | None = None, fresh: bool = False
) -> float:
    """Records/s through one hop: the producer encodes, the consumer decodes.

    With ``fresh`` the producer also builds every record (as Generate does);
    otherwise it sends one prepared batch again and again: the transport limit.
    """
    codec = get_codec(codec_name)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 32)
    sock.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{sock.bind_to_random_port('tcp://127.0.0.1')}"
    proc = mp.get_context("spawn").Process(
        target=_producer, args=(endpoint, total, batch, codec.name, fresh)
    )
    proc.start()
    n = 0
    started = None
    try:
        while True:
            header_b, payload = sock.recv_multipart()
            if started is None:
                started = time.perf_counter()
            header = frames.unpack_header(header_b)
            if header.kind == frames.EOS:
                break
            n += len(codec.decode(payload))
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        proc.join(30)
        sock.close()
        ctx.term()
    return n / elapsed if elapsed > 0 else 0.0
