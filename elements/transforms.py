"""Per-record transforms: Filter (keep records matching an expression) and Map (reshape them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datablox.element import Element, Record
from datablox.elements._support import Rejects
from datablox.elements.expr import Evaluator, batch_filter, compile_expr
from datablox.errors import ElementClassError, ElementError, ExpressionError, ParameterError
from datablox.ports import Param, ParamProblem, push_in, push_out
from datablox.registry import import_callable

__all__ = ["Filter", "Map"]


class Filter(Element):
    """Pass on the records for which an expression is true.

    Ports:
        in (push in): any records.
        out (push out): the records kept, unchanged.

    Parameters:
        where (str, required): an expression (see docs/elements.md, "Expressions"),
            e.g. ``"value > 0.5 and key != 'k0'"``. A missing field reads as null,
            and comparisons with null are false, so such records are dropped.

    Bad input: an expression that does not parse stops the element at start
    with the column and a caret. A record on which evaluation fails (``'a' + 1``)
    goes to the dead letters with the error; the rest of its batch goes on.
    """

    plain_records = True  # passes on records it received, unchanged
    ports = (push_in("in"), push_out("out"))
    params = (Param("where", "str", doc="expression; records where it is true pass"),)
    cheap = True

    @staticmethod
    def check_params(params: dict[str, Any]) -> list[ParamProblem]:
        """Parse ``where`` when the topology is checked, not only when the element starts."""
        found = _expression_problem("Filter", "where", params["where"])
        return [found] if found else []

    def on_start(self, params: dict[str, Any]) -> None:
        self.where: Evaluator = compile_expr(params["where"])
        self.keep = batch_filter(self.where)
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        where, keep = self.where, self.keep
        try:
            kept = keep(records) if keep is not None else [r for r in records if where(r)]
        except Exception:
            # Expressions are pure, so evaluating the batch again record by
            # record only costs time, and isolates the bad records.
            kept = []
            for record in records:
                try:
                    if where(record):
                        kept.append(record)
                except Exception as exc:
                    self.reject(record, _error_text(exc), port=port)
        if kept:
            self.emit_many(kept)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ExpressionError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _load_function(ref: str) -> Callable[[Record], Any]:
    try:
        fn: Callable[[Record], Any] = import_callable(ref)
    except ElementClassError as exc:
        raise ParameterError(
            f"Map: fn: {exc.message}",
            "fn",
            exc.hint or "modules next to the .topo file are importable",
        ) from None
    return fn


def _expression_problem(
    cls: str, param: str, source: Any, where: str | None = None
) -> ParamProblem | None:
    """Why ``source`` is not a valid expression, said for the checker; None when it is."""
    try:
        compile_expr(source)
    except ExpressionError as exc:
        # The checker shows the source line with its own caret; keep the headline only.
        message = exc.message.split("\n")[0]
        label = f"{param}.{where}" if where is not None else param
        return ParamProblem(
            param, f"parameter '{label}' of {cls}: {message}", exc.hint, where, exc.column
        )
    return None


_NO_OPERATION = "Map needs at least one of: set, drop, fn"
_NO_OPERATION_HINT = 'e.g. Map(set={"double": "value * 2"}) or Map(fn="mymodule:reshape")'


def _quote_hint(source: Any) -> str:
    return f'quote it: "{source}" — string literals inside need quotes too: "\'text\'"'


class Map(Element):
    """Reshape records: compute fields, drop fields, and/or call a Python function.

    Ports:
        in (push in): any records.
        out (push out): the transformed records (zero, one or several per input).

    Parameters:
        set (map|null, null): field -> expression; every expression is evaluated
            on the *incoming* record, then the results are stored (so
            ``{"a": "b", "b": "a"}`` swaps).
        drop (list|null, null): field names to remove (after ``set``).
        fn (str|null, null): ``"package.module:function"``, called last with the
            record; it returns a record, a list of records, or None to drop it.
        plain (bool, false): a promise that every record this Map emits is built only
            of values every codec carries as they are (maps with string keys, lists,
            strings, integers within 64 bits, finite floats, booleans, null), and that
            ``fn`` keeps no record it returns and returns none twice. Fused with the
            next element, its records then go on without the copy that otherwise gives
            a fused element exactly what a separate process would get
            (docs/records.md). A broken promise can make fused results differ.

    At least one of them must be given. The record is changed in place: every
    element owns the records it receives (the runtime copies them when an
    out-port fans out to several elements in one process).

    Bad input: no operation, an expression that does not parse, or a ``fn``
    that cannot be imported stop the element at start. A record on which an
    expression or ``fn`` fails, or for which ``fn`` returns something other
    than a map, list of maps or None, goes to the dead letters; the rest of its
    batch goes on.
    """

    ports = (push_in("in"), push_out("out"))
    params = (
        Param("fn", "str|null", default=None, doc="package.module:function, record -> record(s)"),
        Param("set", "map|null", default=None, doc="field -> expression on the incoming record"),
        Param("drop", "list|null", default=None, doc="field names to remove"),
        Param("plain", "bool", default=False, doc="promise: plain values only (no fused copy)"),
    )
    cheap = True
    calls = ("fn",)

    @staticmethod
    def check_params(params: dict[str, Any]) -> list[ParamProblem]:
        """When the topology is checked: an operation is given and every expression parses."""
        if params["fn"] is None and not params["set"] and not params["drop"]:
            return [ParamProblem("set", _NO_OPERATION, _NO_OPERATION_HINT)]
        problems = []
        for field, source in (params["set"] or {}).items():
            if not isinstance(source, str):
                problems.append(
                    ParamProblem(
                        "set",
                        f"parameter 'set.{field}' of Map must be an expression string, "
                        f"got {source!r}",
                        _quote_hint(source),
                        field,
                    )
                )
                continue
            found = _expression_problem("Map", "set", source, field)
            if found:
                problems.append(found)
        return problems

    def on_start(self, params: dict[str, Any]) -> None:
        if params["fn"] is None and not params["set"] and not params["drop"]:
            raise ParameterError(_NO_OPERATION, "set", _NO_OPERATION_HINT)
        self.fn = _load_function(params["fn"]) if params["fn"] else None
        self.set: list[tuple[str, Evaluator]] = []
        for field, source in (params["set"] or {}).items():
            if not isinstance(source, str):
                raise ParameterError(
                    f"Map: set.{field} must be an expression string, got {source!r}",
                    "set",
                    _quote_hint(source),
                )
            try:
                self.set.append((field, compile_expr(source)))
            except ExpressionError as exc:
                exc.message = f"Map set.{field}: {exc.message}"
                raise
        self.drop: list[str] = list(params["drop"] or [])
        self.plain_records = bool(params["plain"])
        self.reject = Rejects(self)

    def on_batch(self, port: str, records: list[Record]) -> None:
        out: list[Record] = []
        if self.fn is not None and not self.set and not self.drop:
            self._fn_only(port, records, out)
            return
        for record in records:
            # Per record, not per batch: a user fn may have side effects, so a
            # failed batch must not be re-run to find the bad record.
            try:
                self._one(record, out)
            except ElementError:
                raise
            except Exception as exc:
                self.reject(record, _error_text(exc), port=port)
        if out:
            self.emit_many(out)

    def _fn_only(self, port: str, records: list[Record], out: list[Record]) -> None:
        """The commonest Map, a function alone, with the per-record work inlined."""
        fn, append = self.fn, out.append
        assert fn is not None
        for record in records:
            try:
                result = fn(record)
                if type(result) is dict:
                    append(result)
                elif result is not None:
                    self._result(result, out)
            except ElementError:
                raise
            except Exception as exc:
                self.reject(record, _error_text(exc), port=port)
        if out:
            self.emit_many(out)

    def _one(self, record: Record, out: list[Record]) -> None:
        # The runtime hands every receiver a record of its own (it copies when an
        # out-port fans out), so changing the record in place is safe.
        if self.set:
            record.update([(field, ev(record)) for field, ev in self.set])
        for field in self.drop:
            record.pop(field, None)
        if self.fn is None:
            out.append(record)
            return
        result = self.fn(record)
        if result is not None:
            self._result(result, out)

    @staticmethod
    def _result(result: Any, out: list[Record]) -> None:
        if isinstance(result, dict):
            out.append(result)
        elif isinstance(result, list) and all(isinstance(r, dict) for r in result):
            out.extend(result)
        else:
            kind = type(result).__name__
            raise TypeError(f"fn returned {kind}; expected a record (dict), a list of them or None")
