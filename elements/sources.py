"""Synthetic sources: Generate, a seeded stream of numbered records for tests and benchmarks."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from datablox.element import Record, Source
from datablox.ports import Param, push_out

__all__ = ["Generate", "Pacer"]

#: A paced source wakes at most once per this many seconds and then emits every record
#: due within it: waking the runtime for a few records would cost more than they do.
_MIN_WAIT = 0.002


class Pacer:
    """When a source paced at ``rate`` records/s emits, and how many records: pure
    decision logic, handed the clock.

    Paced against the start time rather than per list, so the rate holds on average
    even when single waits overshoot. On waking, the source opens a window of
    ``window`` seconds and emits every record due within it (in lists of at most the
    batch size); then it waits until the next record is due. So it wakes at most once
    per window, however long building a list takes: a window that moved with the
    clock would hand out a few more records after every list and never wait.
    """

    __slots__ = ("horizon", "rate", "start", "window")

    def __init__(self, rate: float, start: float, window: float = _MIN_WAIT) -> None:
        self.rate = rate
        self.start = start
        self.window = window
        #: the end of the open window (-inf: none open yet)
        self.horizon = float("-inf")

    def step(self, now: float, emitted: int) -> tuple[float, int]:
        """``(seconds to wait, 0)`` when the next record is not due yet, else
        ``(0.0, records due)`` (at least 1), ``emitted`` records having gone out."""
        next_at = self.start + emitted / self.rate
        if next_at > self.horizon:
            if next_at > now:
                return next_at - now, 0
            self.horizon = now + self.window
        return 0.0, max(1, int((self.horizon - self.start) * self.rate) + 1 - emitted)


class Generate(Source):
    """Emit numbered records with seeded random values.

    Ports:
        out (push out): ``{"id": int, "key": str, "value": float, "ts": int}``,
            plus ``"t_emit": float`` when ``stamp`` is true. ``id`` and ``ts`` count
            from 0; ``key`` is ``"k{id % keys}"``; ``value`` is uniform in [0, 1)
            rounded to 6 digits, the same sequence for the same ``seed``.

    Parameters:
        count (int|null, 1000): records to emit; ``null`` emits forever.
        rate (number|null, null): records per second; ``null`` emits as fast as
            downstream accepts. Paced with ``wait`` so batches still flush: it wakes at
            most once per 2 ms and emits the records due within those 2 ms at once.
        keys (int, 10): number of distinct keys.
        seed (int, 0): random seed.
        stamp (bool, false): add ``t_emit`` (``time.monotonic()`` at emission)
            so a sink on the same host can measure latency.

    Bad input: a negative ``count``, a ``rate`` that is not positive or
    ``keys`` < 1 stop the element at start with a ParameterError.
    """

    resumable = True

    plain_records = True  # builds records from plain values, or passes them on
    ports = (push_out("out", fields={"id": "int", "key": "str", "value": "float", "ts": "int"}),)
    params = (
        Param("count", "int|null", 1000, "records to emit; null = endless", least=0),
        Param("rate", "number|null", None, "records per second; null = unpaced", above=0),
        Param("keys", "int", 10, "number of distinct keys k0, k1, ...", least=1),
        Param("seed", "int", default=0, doc="random seed; same seed, same values"),
        Param("stamp", "bool", default=False, doc="add t_emit = time.monotonic()"),
    )

    def on_start(self, params: dict[str, Any]) -> None:
        self.count: int | None = params["count"]
        self.rate: float | None = params["rate"]
        self.keys: int = params["keys"]
        self.seed: int = params["seed"]
        self.stamp: bool = params["stamp"]
        self.total = self.count
        self.i = 0
        self.rng = random.Random(self.seed)

    def snapshot(self) -> Any:
        # the position and the random state: a restore continues the same sequence
        return {"i": self.i, "rng": self.rng.getstate()}

    def restore(self, state: Any) -> None:
        self.i = state["i"]
        self.rng.setstate(state["rng"])

    def generate(self) -> Iterator[Record | None]:
        for batch in self.generate_batches(1):
            if batch is None:
                yield None
            else:
                yield from batch

    def generate_batches(self, size: int) -> Iterator[list[Record] | None]:
        rnd = self.rng.random
        keys, stamp, rate, count = self.keys, self.stamp, self.rate, self.count
        names = [f"k{i}" for i in range(keys)]
        pacer = None if rate is None else Pacer(rate, time.monotonic())
        first = self.i
        while count is None or self.i < count:
            i = self.i
            n = size if count is None else min(size, count - i)
            if pacer is not None:
                wait, due = pacer.step(time.monotonic(), i - first)
                if wait > 0:
                    self.wait(wait)
                    # back to the runtime after each wait, so that a stop or a
                    # checkpoint is not held up until the next record is due
                    yield None
                    continue
                n = min(n, due)
            end = i + n
            batch: list[Record] = [
                {"id": j, "key": names[j % keys], "value": round(rnd(), 6), "ts": j}
                for j in range(i, end)
            ]
            if stamp:
                at = time.monotonic()
                for record in batch:
                    record["t_emit"] = at
            self.i = end  # counted before the yield: a snapshot between lists sees it
            yield batch
