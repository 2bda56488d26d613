"""Testing helpers shipped with datablox: drive one element in-process, no sockets.

    h = ElementHarness("Filter", {"where": "value > 0.5"})
    out = h.push([{"value": 0.9}, {"value": 0.1}])   # -> [{"value": 0.9}]
    h.finish()

The harness uses the same hook calling and dead-letter handling as a running
topology; only the links behind out-ports are in-memory lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datablox.element import Element, Record, Source
from datablox.errors import DatabloxError, QueryError, QueryTimeout
from datablox.ports import validate_params
from datablox.registry import resolve
from datablox.runtime.context import ElementContext, OutPort
from datablox.runtime.handling import Handler, MemoryDeadLetters

__all__ = ["CaptureLink", "ElementHarness", "HarnessError", "chain"]


class HarnessError(DatabloxError):
    """The harness was asked for something the element does not have or cannot do."""


def chain(
    name: str, elements: list[tuple[str, str, dict[str, Any]]], **extra: Any
) -> dict[str, Any]:
    """Tradecraft for a linear chain of ``(name, class, params)`` joined ``out -> in``.

    ``extra`` keys (``search_path``, ``fuse``…) are set on the result.
    """
    tradecraft: dict[str, Any] = {
        "tradecraft": 1,
        "name": name,
        "search_path": [],
        "elements": [
            {"id": i, "name": n, "class": c, "params": p, "node": None, "shard": None}
            for i, (n, c, p) in enumerate(elements)
        ],
        "connections": [
            {
                "id": i,
                "kind": "push",
                "from": {"element": elements[i][0], "port": "out"},
                "to": {"element": elements[i + 1][0], "port": "in"},
            }
            for i in range(len(elements) - 1)
        ],
        "feeds": [],
        "fuse": [],
    }
    tradecraft.update(extra)
    return tradecraft


class CaptureLink:
    """A link that keeps what is sent on it."""

    def __init__(self, conn_id: int = 0) -> None:
        self.conn_id = conn_id
        self.records: list[Any] = []
        self.sent = 0

    def append(self, record: Any) -> None:
        self.records.append(record)
        self.sent += 1

    def extend(self, records: list[Any]) -> None:
        self.records.extend(records)
        self.sent += len(records)

    def flush(self) -> None:
        pass

    def barrier(self, checkpoint: int) -> None:
        pass


class _Answer:
    def __init__(self, ok: bool, value: Any) -> None:
        self._ok = ok
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        if self._ok:
            return self._value
        raise QueryError(str(self._value))


class _CallAsker:
    def __init__(self, answer: Callable[[Any], Any] | None, port: str) -> None:
        self._answer = answer
        self._port = port

    def ask_async(self, request: Any) -> _Answer:
        if self._answer is None:
            raise QueryTimeout(f"no answerer connected to query port '{self._port}'")
        try:
            return _Answer(True, self._answer(request))
        except Exception as exc:
            return _Answer(False, f"{type(exc).__name__}: {exc}")


class ElementHarness:
    """One element instance run in-process with captured outputs."""

    def __init__(
        self,
        cls: type[Element] | str,
        params: dict[str, Any] | None = None,
        *,
        name: str = "element",
        connections: dict[str, int] | None = None,
        answerers: dict[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.cls = resolve(cls) if isinstance(cls, str) else cls
        if not (isinstance(self.cls, type) and issubclass(self.cls, Element)):
            raise HarnessError(
                f"ElementHarness drives an Element subclass, got {self.cls!r}",
                "pass the class itself (or its name), e.g. ElementHarness(MyElement, {...})",
            )
        values, errors = validate_params(self.cls.__name__, self.cls.params, params or {})
        if errors:
            raise errors[0]
        self.logs: list[str] = []
        self.dead = MemoryDeadLetters()
        connections = connections or {}
        self.links: dict[str, list[CaptureLink]] = {}
        outputs: dict[str, OutPort] = {}
        askers: dict[str, Any] = {}
        for port in self.cls.ports:
            if port.kind == "push" and port.direction == "out":
                links = [CaptureLink() for _ in range(connections.get(port.name, 1))]
                self.links[port.name] = links
                outputs[port.name] = OutPort(port.name, list(links))
            elif port.kind == "query" and port.direction == "out":
                askers[port.name] = _CallAsker((answerers or {}).get(port.name), port.name)
        self.element = self.cls()
        self.element.name = name
        #: seconds a source asked to pause via ``self.wait`` (not actually slept)
        self.waits: list[float] = []
        self.ctx = ElementContext(
            name, outputs, askers, self.dead, self._log, wait=self.waits.append
        )
        self.element._ctx = self.ctx
        self.handler = Handler(self.element, self.ctx, self._log)
        self.element.on_start(values)

    def _log(self, element: str, message: str) -> None:
        self.logs.append(f"{element}: {message}")

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        return self.dead.entries

    def _port(self, name: str, kind: str, direction: str) -> str:
        """``name``, when the element declares a port of that kind and direction."""
        found = self.cls.port(name)
        if found is None or found.kind != kind or found.direction != direction:
            have = [p.name for p in self.cls.ports if p.kind == kind and p.direction == direction]
            what = f"{kind} {direction}-port"
            raise HarnessError(
                f"{self.cls.__name__} has no {what} '{name}'",
                f"its {what}s: {', '.join(have)}" if have else f"it has no {what}",
            )
        return name

    def _take(self, port: str, default: bool = False) -> list[Record]:
        """What ``port`` emitted since the last take; ``default``: the port was not named by
        the caller, so a class without push out-ports (a sink) gives an empty list."""
        if default and not self.links:
            self.ctx.flush()
            return []
        self._port(port, "push", "out")
        self.ctx.flush()
        taken: list[Record] = []
        for link in self.links.get(port, []):
            taken.extend(link.records)
            link.records.clear()
        return taken

    def take(self, port: str = "out") -> list[Record]:
        """Records emitted on ``port`` since the last take (all connections, in order)."""
        return self._take(port)

    def take_connection(self, index: int, port: str = "out") -> list[Record]:
        """Records emitted on connection ``index`` of ``port`` since the last take."""
        self._port(port, "push", "out")
        self.ctx.flush()
        links = self.links[port]
        if not 0 <= index < len(links):
            raise HarnessError(
                f"port '{port}' has {len(links)} connection(s), so no connection {index}",
                "give the harness more: connections={'" + port + "': N}",
            )
        link = links[index]
        taken = list(link.records)
        link.records.clear()
        return taken

    def push(
        self, records: list[Record], port: str = "in", out: str | None = "out"
    ) -> list[Record]:
        """Deliver ``records`` as one batch on ``port``; return what was emitted on ``out``.

        With ``out=None`` nothing is taken, so ``take_connection`` can inspect routing.
        """
        self._port(port, "push", "in")
        self.handler.batch(port, list(records))
        return self._take(out, default=out == "out") if out is not None else []

    def query(self, request: Any, port: str) -> Any:
        """Ask the element's query in-port ``port``; raise QueryError when it fails."""
        ok, answer = self.handler.query(self._port(port, "query", "in"), request)
        if not ok:
            raise QueryError(answer)
        return answer

    def end(self, port: str = "in") -> None:
        """End push in-port ``port``, as when every sender to it has finished."""
        self.element.on_end(self._port(port, "push", "in"))

    def finish(self, out: str = "out") -> list[Record]:
        """End every push in-port, call ``on_finish``; return what was emitted on ``out``."""
        for port in self.cls.ports:
            if port.kind == "push" and port.direction == "in":
                self.element.on_end(port.name)
        self.element.on_finish()
        return self._take(out, default=out == "out")

    def run_source(self, limit: int | None = None) -> list[Record]:
        """Drain a source's ``generate`` (up to ``limit`` records), then finish it."""
        if not isinstance(self.element, Source):
            raise HarnessError(
                f"{self.cls.__name__} is not a Source, so it has no generate() to run",
                "push records to it instead: harness.push([...], port='in')",
            )
        port = self.element.source_port
        n = 0
        for record in self.element.generate():
            if record is None:
                continue
            self.ctx.emit(port, record)
            n += 1
            if limit is not None and n >= limit:
                break
        self.element.on_finish()
        return self._take(port)
