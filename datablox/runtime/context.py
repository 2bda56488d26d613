"""What an element instance sees of the runtime: its out-ports, asks and dead letters.

An :class:`ElementContext` is shared by every way of running an element (its
own process, fused with others, or the in-process test harness); only the
*links* behind each out-port differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from datablox.errors import ElementError


class Link(Protocol):
    """One connection leaving an out-port."""

    conn_id: int
    #: records handed on (a logical counter: restored with the sender's snapshot)
    sent: int

    def append(self, record: Any) -> None: ...
    def extend(self, records: list[Any]) -> None: ...
    def flush(self) -> None: ...
    def barrier(self, checkpoint: int) -> None: ...


class Asker(Protocol):
    """The asking side of one query out-port."""

    def ask_async(self, request: Any) -> Any: ...


class DeadLetters(Protocol):
    def write(self, element: str, record: Any, error: str, context: dict[str, Any]) -> None: ...


class OutPort:
    """The links of one push out-port and the count of records emitted on it.

    Emitted records collect in ``pending`` and go to every link in one
    ``extend`` (``flush``): per record, an emit costs one list append whatever
    the number of links. The runtime flushes after each hook call and when
    ``batch_size`` records are pending.
    """

    __slots__ = ("batch_size", "emitted", "links", "name", "pending")

    def __init__(self, name: str, links: list[Link], batch_size: int = 1024) -> None:
        self.name = name
        self.links = links
        self.batch_size = batch_size
        self.pending: list[Any] = []
        self.emitted = 0

    def flush(self) -> None:
        pending = self.pending
        if pending:
            self.pending = []
            self.emitted += len(pending)
            for link in self.links:
                link.extend(pending)


class ElementContext:
    """Runtime services for one element instance."""

    def __init__(
        self,
        element: str,
        outputs: dict[str, OutPort],
        askers: dict[str, Asker],
        dead_letters: DeadLetters,
        log: Callable[[str, str], None],
        wait: Callable[[float], None] | None = None,
    ) -> None:
        self.element = element
        self.outputs = outputs
        self.askers = askers
        #: inside on_start: the other elements may not answer yet
        self.starting = False
        self._dead = dead_letters
        self._log = log
        self._wait = wait or time.sleep
        self.dead_count = 0
        #: set when the push outputs have ended; emitting after that is a mistake
        self.closed = False
        #: every out-port, also after ``close`` (which empties ``outputs``)
        self.ports = outputs

    def _out(self, port: str) -> OutPort:
        if self.closed:
            raise ElementError(
                f"element '{self.element}' emitted on '{port}' after its push outputs ended "
                "(after on_finish)"
            )
        try:
            return self.outputs[port]
        except KeyError:
            known = ", ".join(self.outputs) or "none"
            raise ElementError(
                f"element '{self.element}' emitted on '{port}', which is not one of its "
                f"push out-ports ({known})"
            ) from None

    def emit(self, port: str, record: Any) -> None:
        try:
            out = self.outputs[port]
        except KeyError:
            self._out(port)
            raise

        pending = out.pending
        pending.append(record)
        if len(pending) >= out.batch_size:
            out.flush()

    def emit_many(self, port: str, records: list[Any]) -> None:
        out = self._out(port)
        out.pending.extend(records)
        if len(out.pending) >= out.batch_size:
            out.flush()

    def close(self) -> None:
        """End the push outputs: from now on an emit raises ElementError."""
        self.flush()
        self.closed = True
        self.outputs = {}

    def flush(self) -> None:
        """Hand every pending record to its links."""
        for out in self.outputs.values():
            if out.pending:
                out.flush()

    def emit_to(self, port: str, index: int, record: Any) -> None:
        out = self._out(port)
        try:
            if index < 0:
                raise IndexError(index)  # not Python's count from the end
            link = out.links[index]
        except IndexError:
            raise ElementError(
                f"element '{self.element}' emitted to connection {index} of '{port}', "
                f"which has {len(out.links)} connection(s)"
            ) from None
        out.flush()  # what was emitted before goes first
        out.emitted += 1
        link.append(record)

    def emit_all(self, port: str, record: Any) -> None:
        """``record`` to every connection of ``port`` and, behind a connection into a
        shard, to every member of it (after what was emitted before)."""
        out = self._out(port)
        out.flush()
        out.emitted += 1
        for link in out.links:
            broadcast = getattr(link, "broadcast", None)
            if broadcast is not None:
                broadcast(record)
            else:
                link.append(record)

    def connections(self, port: str) -> int:
        return len(self._out(port).links)

    def ask_async(self, port: str, request: Any) -> Any:
        if self.starting:
            raise ElementError(
                f"it asked on '{port}' in on_start, before the other "
                "elements answer queries; ask once the records flow (in on_record, or on "
                "the first record)"
            )
        try:
            asker = self.askers[port]
        except KeyError:
            known = ", ".join(self.askers) or "none"
            raise ElementError(
                f"element '{self.element}' asked on '{port}', which is not a connected "
                f"query out-port ({known})"
            ) from None
        return asker.ask_async(request)

    def ask(self, port: str, request: Any, timeout: float) -> Any:
        return self.ask_async(port, request).result(timeout)

    def dead_letter(self, element: str, record: Any, error: str, context: dict[str, Any]) -> None:
        self.dead_count += 1
        self._dead.write(element, record, error, context)

    def log(self, element: str, message: str) -> None:
        self._log(element, message)

    def wait(self, seconds: float) -> None:
        self._wait(seconds)
