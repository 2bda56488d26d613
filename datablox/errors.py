"""The one exception tree of datablox.

Every error datablox raises on purpose derives from :class:`DatabloxError`::

    DatabloxError
    ├── TopologyError          a .topo / tradecraft problem found before running
    │   └── (carries a list of Diagnostic, each with file:line:col and a hint)
    ├── ElementClassError      an element class cannot be found or is malformed
    ├── ParameterError         an element parameter is missing or has the wrong type
    ├── CodecError             a batch payload cannot be encoded or decoded
    ├── ProtocolError          a malformed frame or control message
    ├── QueryError             a query failed on the answering side
    │   └── QueryTimeout       no answer arrived in time
    ├── RunError               a running topology failed (an element gave up, start failed)
    ├── ElementError           an element stops itself: misuse of the runtime API, or raised
    │                          on purpose by element code to stop the element and fail the run
    └── ExpressionError        a filter/map expression is malformed
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "DatabloxError",
    "ElementClassError",
    "ElementError",
    "ExpressionError",
    "ParameterError",
    "ProtocolError",
    "QueryError",
    "QueryTimeout",
    "RunError",
    "TopologyError",
]


class DatabloxError(Exception):
    """Root of every error datablox raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class TopologyError(DatabloxError):
    """One or more problems in a topology, each a ``dsl.diagnostics.Diagnostic``."""

    def __init__(self, diagnostics: list, rendered: str | None = None) -> None:  # type: ignore[type-arg]
        self.diagnostics = list(diagnostics)
        text = rendered if rendered is not None else "\n".join(str(d) for d in self.diagnostics)
        super().__init__(text)


class ElementClassError(DatabloxError):
    """An element class reference cannot be resolved or the class is malformed."""


class ParameterError(DatabloxError):
    """A parameter given to an element class is missing, unknown or of the wrong type."""

    def __init__(self, message: str, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.param = param


class CodecError(DatabloxError):
    """A batch payload cannot be encoded or decoded."""


class ProtocolError(DatabloxError):
    """A frame or control message does not follow the protocol."""


class QueryError(DatabloxError):
    """The answering element raised an error for a query."""


class QueryTimeout(QueryError):
    """No answer to a query arrived within its timeout."""


class RunError(DatabloxError):
    """A running topology failed: an element could not start or crashed too often."""


class ElementError(DatabloxError):
    """Stops the element that raised it (not restarted) and the run, which fails.

    The runtime raises it when an element misuses its services (emitting on a
    port it does not have). Element code raises it on purpose when an error
    should end the run instead of dead-lettering the record at hand, e.g.
    ``except QueryError as exc: raise ElementError(f"lookup failed: {exc}")``.
    Every other exception raised while handling a record, including
    ``QueryError`` and ``QueryTimeout`` from ``ask``, sends that record to the
    dead letters and the element goes on.
    """

    #: the element whose hook raised it, once the runtime knows
    element: str | None = None


class ExpressionError(DatabloxError):
    """A filter or map expression cannot be parsed or evaluated."""

    def __init__(self, message: str, column: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.column = column
