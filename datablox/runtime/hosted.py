"""One element instance hosted in a process, with its end-of-stream bookkeeping."""

from __future__ import annotations

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
        self.source_done = not self.is_source
        #: push in-port -> connection ids not yet ended
        self.open_inputs: dict[str, set[int]] = {}
        #: query in-port -> asking connection ids whose asker has not finished
        self.open_queries: dict[str, set[int]] = {}
        self.finished = False
        self.failed: str | None = None

    def waiting_for(self) -> bool:
        """True while an input, a query client or the source itself is still open."""
        if not self.source_done:
            return True
        if any(self.open_inputs.values()):
            return True
        return any(self.open_queries.values())

    def emitted(self) -> int:
        return sum(out.emitted for out in self.ctx.outputs.values())

    def progress(self) -> list[int | None] | None:
        if not self.is_source:
            return None
        element = self.element
        assert isinstance(element, Source)
        out = self.ctx.outputs.get(element.source_port)
        return [out.emitted if out else 0, element.total]
