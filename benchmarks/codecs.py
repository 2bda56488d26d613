"""Codec speed: encode + decode of typical batches, records per second."""

from __future__ import annotations

import time

from benchmarks.work import records
from datablox.codec import codec_names, get_codec


def measure_codecs(seconds: float = 0.5, batch: int = 256) -> dict[str, float]:
    """Records/s of encode+decode for each installed codec."""
    sample = list(records(batch))
    out: dict[str, float] = {}
    for name in codec_names():
        codec = get_codec(name)
        n = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            codec.decode(codec.encode(sample))
            n += batch
        out[name] = n / (time.perf_counter() - started)
    return out
