"""One element instance hosted in a process, with its end-of-stream bookkeeping."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from datablox.element import Element, Source
from datablox.runtime.context import ElementContext
from datablox.runtime.handling import Handler


class Hosted:
    """An element instance plus what it still waits for before it can finish."""

    def __init__(
        self, spec: dict[str, Any], element: Element, ctx: ElementContext, handler: Handler
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.id: int = spec["id"]
        self.element = element
        self.ctx = ctx
        self.handler = handler
        self.is_source = isinstance(element, Source)
        self.gen: Iterator[Any] | None = None
        #: the source runs through ``generate_batches``: ``gen`` yields lists of records
        self.batched = self.is_source and type(element).batched()  # type: ignore[attr-defined]
        #: records of a list a restored batched source had partly emitted before its
        #: checkpoint: they go out first
        self.carry: list[Any] = []
        self.source_done = not self.is_source
        #: push in-port -> connection ids not yet ended
        self.open_inputs: dict[str, set[int]] = {}
        #: query in-port -> asking connection ids whose asker has not finished
        self.open_queries: dict[str, set[int]] = {}
        #: on_finish has run and the push outputs have ended (queries may still come)
        self.outputs_ended = False
        #: the master has been told that its outputs ended (it asks no more)
        self.told_outputs_ended = False
        self.finished = False
        self.failed: str | None = None
        #: push input connections that have ended
        self.ended_inputs: set[int] = set()
        # ---- checkpoints (see runtime/snapshots.py) ----
        #: the checkpoint whose barriers are being aligned, if any
        self.aligning: int | None = None
        #: connection -> (expected seq, records received) when its barrier arrived
        self.arrived: dict[int, tuple[int, int]] = {}
        #: what arrived after a barrier while the others were awaited, in order
        self.held: deque[tuple[int, str, Any]] = deque()
        #: the highest checkpoint acknowledged
        self.acked = -1
        #: the snapshot taken when the push outputs ended (stands for later checkpoints)
        self.final_file: str | None = None
        #: records a restored source skips before emitting (it replays from there)
        self.skip = 0

    def inputs_open(self) -> bool:
        """True while a push input, or the source itself, is still open."""
        return not self.source_done or any(self.open_inputs.values())

    def open_inputs_any(self) -> bool:
        """True when a push input connection has not ended (sources: never)."""
        return any(self.open_inputs.values())

    def queries_open(self) -> bool:
        """True while an element that may still ask this one has not finished asking."""
        return any(self.open_queries.values())

    def emitted(self) -> int:
        return sum(out.emitted for out in self.ctx.ports.values())

    def progress(self) -> list[int | None] | None:
        if not self.is_source:
            return None
        element = self.element
        assert isinstance(element, Source)
        out = self.ctx.ports.get(element.source_port)
        return [out.emitted if out else 0, element.total]
