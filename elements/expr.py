"""A small, safe expression language for Filter and Map, compiled once into Python closures.

    >>> keep = compile_expr("candidate.magpsf < 18 and band in ['g', 'r']")
    >>> keep({"candidate": {"magpsf": 17.2}, "band": "g"})
    True

The grammar is ``expr.lark`` next to this module. Nothing is ever passed to
``eval``/``exec``/``compile``: the parse tree is turned into nested closures, so
an expression can only read the record and call the functions listed in
:data:`FUNCTIONS`.

Semantics, where they differ from Python:

- a missing field (or a path through a non-map) reads as ``null``;
- ``< <= > >= in`` and ``not in`` with a ``null`` operand are false; ``==``
  and ``!=`` compare ``null`` normally;
- arithmetic with ``null`` gives ``null``; so does every function given a
  ``null`` argument, except ``exists``;
- a type error while evaluating (``'a' + 1``) raises
  :class:`~datablox.errors.ExpressionError` naming the operator, the values and
  the column; so does a syntax error (with a caret under the column) or an
  unknown function (at compile time).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from datablox.elements._expr_syntax import syntax_error
from datablox.errors import ExpressionError
from datablox.ports import suggest, type_name_of

__all__ = ["FUNCTIONS", "Evaluator", "batch_filter", "compile_expr", "get_path"]

#: A compiled expression: record -> value.
Evaluator = Callable[[Mapping[str, Any]], Any]

_NOCONST: Any = object()


@functools.cache
def _parser() -> Lark:
    return Lark.open(str(Path(__file__).with_name("expr.lark")), parser="lalr")


def get_path(record: Any, path: list[str]) -> Any:
    """The value at ``path`` (a list of field names) in nested maps, or None when absent."""
    value = record
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _show(value: Any) -> str:
    """``type value`` for messages, in the expression language's own spelling."""
    text = _to_str(value) if not isinstance(value, str) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type_name_of(value)} {text}"


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, list, dict)):
        return orjson.dumps(value, default=repr).decode()
    return str(value)


# ---- functions -------------------------------------------------------------


def _need_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}() needs a string, got {_show(value)}")
    return value


def _to_number(kind: type, value: Any) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise TypeError(f"{kind.__name__}() cannot convert {_show(value)} to a number") from None


@dataclass(frozen=True)
class Function:
    """A callable the language offers: its arity and implementation."""

    min_args: int
    max_args: int
    impl: Callable[..., Any]
    doc: str


#: Functions available in expressions. Each returns null when given a null argument.
FUNCTIONS: dict[str, Function] = {
    "len": Function(1, 1, len, "length of a string, list or map"),
    "abs": Function(1, 1, abs, "absolute value"),
    "round": Function(1, 2, round, "round(x) to an int, round(x, n) to n decimals"),
    "lower": Function(1, 1, lambda s: _need_str("lower", s).lower(), "lower-case string"),
    "upper": Function(1, 1, lambda s: _need_str("upper", s).upper(), "upper-case string"),
    "str": Function(1, 1, _to_str, "text form; lists and maps as JSON"),
    "int": Function(1, 1, lambda v: _to_number(int, v), "integer from a number or text"),
    "float": Function(1, 1, lambda v: _to_number(float, v), "float from a number or text"),
    "startswith": Function(
        2, 2, lambda s, p: _need_str("startswith", s).startswith(p), "s starts with prefix"
    ),
    "endswith": Function(
        2, 2, lambda s, p: _need_str("endswith", s).endswith(p), "s ends with suffix"
    ),
    # exists is compiled specially: it looks at the field, not its value.
    "exists": Function(1, 1, lambda v: v, "true when the field is present (even if null)"),
}

# ---- operators -------------------------------------------------------------

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


@dataclass
class _Node:
    fn: Evaluator
    const: Any = _NOCONST
    path: list[str] | None = None


_FOLDABLE = {"binop", "unary_op", "compare", "or_op", "and_op", "not_op"}


def _const(value: Any) -> _Node:
    return _Node(lambda r: value, value)


class _Compiler:
    """Turns a parse tree into closures; ``source`` is kept for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str, column: int | None) -> ExpressionError:
        where = f"column {column} of " if column else ""
        return ExpressionError(f"{message} ({where}expression {self.source!r})", column)

    def node(self, tree: Tree) -> _Node:
        kids = [
            self.node(c) if isinstance(c, Tree) and c.data != "comp_op" else c
            for c in tree.children
        ]
        result: _Node = getattr(self, "c_" + str(tree.data))(*kids)
        # Fold operations on constants now, so errors like 'a' + 1 show at compile time.
        consts = all(k.const is not _NOCONST for k in kids if isinstance(k, _Node))
        if result.const is _NOCONST and tree.data in _FOLDABLE and consts:
            return _const(result.fn({}))
        return result

    # literals
    def c_int_lit(self, tok: Token) -> _Node:
        return _const(int(tok))

    def c_float_lit(self, tok: Token) -> _Node:
        return _const(float(tok))

    def c_str_lit(self, tok: Token) -> _Node:
        return _const(_unquote(str(tok)))

    def c_true_lit(self, tok: Token) -> _Node:
        return _const(True)

    def c_false_lit(self, tok: Token) -> _Node:
        return _const(False)

    def c_null_lit(self, tok: Token) -> _Node:
        return _const(None)

    def c_list_lit(self, _bracket: Token, *items: _Node) -> _Node:
        fns = [i.fn for i in items]
        return _Node(lambda r: [f(r) for f in fns])

    def c_path(self, *segments: Token) -> _Node:
        names = [s[1:-1] if s.type == "QUOTED_NAME" else str(s) for s in segments]
        if len(names) == 1:
            name = names[0]
            return _Node(lambda r: r.get(name), path=names)
        return _Node(lambda r: get_path(r, names), path=names)

    # logic
    def c_or_op(self, left: _Node, _op: Token, right: _Node) -> _Node:
        a, b = left.fn, right.fn
        return _Node(lambda r: a(r) or b(r))

    def c_and_op(self, left: _Node, _op: Token, right: _Node) -> _Node:
        a, b = left.fn, right.fn
        return _Node(lambda r: a(r) and b(r))

    def c_not_op(self, _op: Token, operand: _Node) -> _Node:
        a = operand.fn
        return _Node(lambda r: not a(r))

    # comparisons
    def c_compare(self, *parts: Any) -> _Node:
        operands = [p.fn for p in parts[0::2]]
        tests = [self._comparison(p.children[0]) for p in parts[1::2]]
        if len(tests) == 1:
            fast = self._field_vs_constant(parts)
            if fast is not None:
                return _Node(fast)
            a, b, test = operands[0], operands[1], tests[0]
            return _Node(lambda r: test(a(r), b(r)))

        def chained(r: Mapping[str, Any]) -> bool:
            left = operands[0](r)
            for test, operand in zip(tests, operands[1:]):
                right = operand(r)
                if not test(left, right):
                    return False
                left = right
            return True

        return _Node(chained)

    def _field_vs_constant(self, parts: tuple[Any, ...]) -> Evaluator | None:
        """``field < constant`` and friends, the commonest filter, in one closure."""
        left, op_tree, right = parts
        op = " ".join(str(op_tree.children[0]).split())
        if (
            op not in ("<", "<=", ">", ">=")
            or left.path is None
            or len(left.path) != 1
            or right.const is _NOCONST
            or right.const is None
        ):
            return None
        name, const, fn = left.path[0], right.const, _ORDER[op]
        test = self._comparison(op_tree.children[0])

        def compare(r: Mapping[str, Any]) -> bool:
            value = r.get(name)
            if value is None:
                return False
            try:
                return bool(fn(value, const))
            except TypeError:
                return test(value, const)  # raises the positioned error

        keep = _KEEP[op]
        compare.keep_batch = lambda records: keep(records, name, const)  # type: ignore[attr-defined]
        return compare

    def _comparison(self, tok: Token) -> Callable[[Any, Any], bool]:
        op = " ".join(str(tok).split())  # "not   in" -> "not in"
        if op == "==":
            return operator.eq
        if op == "!=":
            return operator.ne
        fn, column = _ORDER[op], tok.column

        def test(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return False
            try:
                return bool(fn(a, b))
            except TypeError:
                verb = "test" if op.endswith("in") else "compare"
                raise self.error(f"cannot {verb} {_show(a)} {op} {_show(b)}", column) from None

        return test

    # arithmetic
    def c_binop(self, left: _Node, tok: Token, right: _Node) -> _Node:
        a, b = left.fn, right.fn
        op = str(tok)
        fn, column = _ARITH[op], tok.column

        def binop(r: Mapping[str, Any]) -> Any:
            x, y = a(r), b(r)
            if x is None or y is None:
                return None
            try:
                return fn(x, y)
            except TypeError:
                raise self.error(
                    f"cannot apply '{op}' to {_show(x)} and {_show(y)}", column
                ) from None
            except ZeroDivisionError:
                raise self.error(f"division by zero: {_show(x)} {op} {_show(y)}", column) from None
            except OverflowError:
                raise self.error(f"number too large: {_show(x)} {op} {_show(y)}", column) from None

        return _Node(binop)

    def c_unary_op(self, tok: Token, operand: _Node) -> _Node:
        a = operand.fn
        fn = operator.neg if tok == "-" else operator.pos
        op, column = str(tok), tok.column

        def unary(r: Mapping[str, Any]) -> Any:
            x = a(r)
            if x is None:
                return None
            try:
                return fn(x)
            except TypeError:
                raise self.error(f"cannot apply unary '{op}' to {_show(x)}", column) from None

        return _Node(unary)

    # function calls
    def c_call(self, name_tok: Token, _lpar: Token, *args: _Node) -> _Node:
        name, column = str(name_tok), name_tok.column
        spec = FUNCTIONS.get(name)
        if spec is None:
            near = suggest(name, list(FUNCTIONS))
            hint = f"did you mean '{near}'?" if near else "functions: " + ", ".join(FUNCTIONS)
            err = self.error(f"unknown function '{name}'", column)
            err.hint = hint
            raise err
        if not spec.min_args <= len(args) <= spec.max_args:
            want = str(spec.min_args)
            if spec.max_args != spec.min_args:
                want = f"{spec.min_args} or {spec.max_args}"
            got = len(args)
            raise self.error(f"{name}() takes {want} argument(s), got {got}", column)
        if name == "exists":
            return self._exists(args[0], column)
        fns = [a.fn for a in args]
        impl = spec.impl

        def call(r: Mapping[str, Any]) -> Any:
            values = [f(r) for f in fns]
            if None in values:
                return None
            try:
                return impl(*values)
            except (TypeError, ValueError, OverflowError) as exc:
                shown = ", ".join(_show(v) for v in values)
                msg = str(exc) if str(exc).startswith(name) else f"{name}({shown}) failed: {exc}"
                raise self.error(msg, column) from None

        return _Node(call)

    def _exists(self, node: _Node, column: int | None) -> _Node:
        path = node.path
        if path is None and isinstance(node.const, str):
            path = node.const.split(".")
        if path is None:
            raise self.error(
                "exists() takes a field name, such as exists(candidate.magpsf)", column
            )
        names = path

        def exists(r: Mapping[str, Any]) -> bool:
            value: Any = r
            for name in names:
                if not isinstance(value, Mapping) or name not in value:
                    return False
                value = value[name]
            return True

        return _Node(exists)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def _unquote(text: str) -> str:
    """The value of a quoted string literal; backslash escapes as in JSON, no eval."""
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# A batch filter per ordering, with the comparison inlined: a Filter on ``field < constant``
# costs no function call per record. Each gives what ``[r for r in records if ev(r)]`` gives
# for the ``compare`` above, or raises TypeError where it would raise (the caller then
# evaluates record by record, for the positioned error).
def _keep_lt(records: list[Any], name: str, const: Any) -> list[Any]:
    return [r for r in records if (v := r.get(name)) is not None and v < const]


def _keep_le(records: list[Any], name: str, const: Any) -> list[Any]:
    return [r for r in records if (v := r.get(name)) is not None and v <= const]


def _keep_gt(records: list[Any], name: str, const: Any) -> list[Any]:
    return [r for r in records if (v := r.get(name)) is not None and v > const]


def _keep_ge(records: list[Any], name: str, const: Any) -> list[Any]:
    return [r for r in records if (v := r.get(name)) is not None and v >= const]


_KEEP = {"<": _keep_lt, "<=": _keep_le, ">": _keep_gt, ">=": _keep_ge}


def batch_filter(ev: Evaluator) -> Callable[[list[Any]], list[Any]] | None:
    """The compiled expression's batch filter (records -> those it is true for), when it
    has one (``field < constant`` and friends); None otherwise."""
    return getattr(ev, "keep_batch", None)


def compile_expr(source: str) -> Evaluator:
    """Compile ``source`` into a function ``record -> value``; raise ExpressionError if invalid."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError(
            "empty expression", None, "write a condition such as: value > 0.5 and key != 'k0'"
        )
    if "\n" in source:
        # Columns in messages assume one line; a .topo string is one line anyway.
        source = " ".join(source.split())
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as exc:
        raise syntax_error(source, exc) from None
    compiler = _Compiler(source)
    return compiler.node(tree).fn
