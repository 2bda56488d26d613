"""Parsing .topo text into the syntax tree of dsl.ast, with syntax errors as diagnostics."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from datablox.declarations import RESERVED
from datablox.dsl import ast
from datablox.dsl.diagnostics import Diagnostic, Span, error
from datablox.dsl.limits import (
    CARRY_HINT,
    DEPTH_HINT,
    MAX_DEPTH,
    bracket_overflow,
    number_problem,
    too_deep,
)
from datablox.dsl.source import strip_bom

#: Brackets a statement opens before its values start: ``topology t {`` and ``element e = C(``.
_STATEMENT_LEVELS = 2

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "/": "/",
}

#: How expected terminals are named in syntax errors.
_WORDS = {
    "IDENT": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "ARROW": "'->' or '?>'",
    "$END": "end of file",
}


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("datablox.dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="basic",
        start=["start", "value"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _tok_span(file: str, tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    end = tok.end_column if tok.end_line == line and tok.end_column else col + len(tok)
    return Span(file, line, col, end)


def _meta_span(file: str, meta: Meta) -> Span:
    # A construct spread over several lines is underlined to the end of its first line.
    end = meta.end_column if meta.end_line == meta.line else 10**6
    return Span(file, meta.line, meta.column, end)


def _unescape(raw: str) -> str:
    """Decode a quoted string token; raises ValueError naming a bad escape."""
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and len(body) >= i + 6:
            try:
                out.append(chr(int(body[i + 2 : i + 6], 16)))
            except ValueError:
                raise ValueError(f"bad escape '{body[i : i + 6]}'") from None
            i += 6
        else:
            raise ValueError(f"unknown escape '\\{nxt}'")
    return "".join(out)


def _present(items: list[Any]) -> list[Any]:
    """Children without the ``None`` placeholders lark leaves for absent ``[...]`` parts."""
    return [x for x in items if x is not None]


@v_args(meta=True)
class _ToAst(Transformer[Token, Any]):
    def __init__(self, file: str, text: str) -> None:
        super().__init__()
        self.file = file
        self.text = text
        self.diagnostics: list[Diagnostic] = []

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), _tok_span(self.file, tok))

    def _span(self, meta: Meta) -> Span:
        return _meta_span(self.file, meta)

    # ---- values -------------------------------------------------------------
    def string(self, meta: Meta, children: list[Token]) -> ast.Lit:
        tok = children[0]
        try:
            text = _unescape(str(tok))
        except ValueError as exc:
            self.diagnostics.append(
                error(
                    f"{exc} in string",
                    _tok_span(self.file, tok),
                    "known escapes: \\n \\t \\r \\0 \\\\ \\\" \\' \\/ \\uXXXX",
                )
            )
            text = str(tok)[1:-1]
        return ast.Lit(text, _tok_span(self.file, tok))

    def number(self, meta: Meta, children: list[Token]) -> ast.Lit:
        text = str(children[0])
        value: int | float
        value = float(text) if any(c in text for c in ".eE") else int(text)
        lit = ast.Lit(value, self._span(meta))
        problem = number_problem(value, text)
        if problem is not None:
            self.diagnostics.append(error(problem, lit.span, CARRY_HINT))
        return lit

    def true(self, meta: Meta, children: list[Any]) -> ast.Lit:
        return ast.Lit(True, self._span(meta))

    def false(self, meta: Meta, children: list[Any]) -> ast.Lit:
        return ast.Lit(False, self._span(meta))

    def null(self, meta: Meta, children: list[Any]) -> ast.Lit:
        return ast.Lit(None, self._span(meta))

    def ref(self, meta: Meta, children: list[Token]) -> ast.Ref:
        return ast.Ref(str(children[0]), self._span(meta))

    def _depth(self, items: list[ast.Value], span: Span) -> int:
        depth = 1 + max((getattr(v, "depth", 0) for v in items), default=0)
        if depth == MAX_DEPTH + 1:  # reported once, at the outermost level too many
            self.diagnostics.append(error(too_deep(), span, DEPTH_HINT))
        return depth

    def list_v(self, meta: Meta, children: list[Any]) -> ast.ListV:
        items = _present(children)
        span = self._span(meta)
        return ast.ListV(items, span, self._depth(items, span))

    def map_v(self, meta: Meta, children: list[Any]) -> ast.MapV:
        pairs = _present(children)
        span = self._span(meta)
        return ast.MapV(pairs, span, self._depth([v for _, v in pairs], span))

    def pair(self, meta: Meta, children: list[Any]) -> tuple[str, ast.Value]:
        key = self.string(meta, [children[0]])
        return (key.value, children[1])

    # ---- statements ---------------------------------------------------------
    def arg(self, meta: Meta, children: list[Any]) -> ast.Arg:
        return ast.Arg(self._name(children[0]), children[1])

    def class_ref(self, meta: Meta, children: list[Token]) -> ast.Name:
        # The ':' of module:Class is filtered out of the tree, so take the source text.
        written = self.text[meta.start_pos : meta.end_pos]
        return ast.Name("".join(written.split()), self._span(meta))

    def on_clause(self, meta: Meta, children: list[Token]) -> tuple[str, ast.Name]:
        tok = children[0]
        name = self._name(tok)
        if tok.type == "STRING":
            name.text = self.string(meta, [tok]).value
        return ("on", name)

    def shard_clause(self, meta: Meta, children: list[Any]) -> tuple[str, list[ast.Arg], Span]:
        return ("shard", _present(children), self._span(meta))

    def element_stmt(self, meta: Meta, children: list[Any]) -> ast.ElementStmt:
        name, class_ref, *rest = _present(children)
        stmt = ast.ElementStmt(self._name(name), class_ref, [])
        for item in rest:
            if isinstance(item, ast.Arg):
                stmt.args.append(item)
            elif item[0] == "on":
                if stmt.node is not None:
                    self.diagnostics.append(error("'on' given twice", item[1].span))
                stmt.node = item[1]
            else:
                if stmt.shard is not None:
                    self.diagnostics.append(error("'shard(...)' given twice", item[2]))
                stmt.shard, stmt.shard_span = item[1], item[2]
        return stmt

    def endpoint(self, meta: Meta, children: list[Any]) -> ast.Endpoint:
        element, port = children
        return ast.Endpoint(
            self._name(element), self._name(port) if port is not None else None, self._span(meta)
        )

    def connect_stmt(self, meta: Meta, children: list[Any]) -> ast.ConnectStmt:
        endpoints = [c for c in children if isinstance(c, ast.Endpoint)]
        ops = [self._name(c) for c in children if isinstance(c, Token)]
        return ast.ConnectStmt(endpoints, ops)

    def expose_stmt(self, meta: Meta, children: list[Any]) -> ast.ExposeStmt:
        return ast.ExposeStmt(self._name(children[0]), children[1])

    def feed_stmt(self, meta: Meta, children: list[Any]) -> ast.FeedStmt:
        return ast.FeedStmt(self._name(children[0]), children[1])

    def fuse_stmt(self, meta: Meta, children: list[Token]) -> ast.FuseStmt:
        return ast.FuseStmt([self._name(t) for t in children], self._span(meta))

    def group_param(self, meta: Meta, children: list[Any]) -> ast.GroupParam:
        return ast.GroupParam(self._name(children[0]), children[1])

    def group_def(self, meta: Meta, children: list[Any]) -> ast.GroupDef:
        name, *rest = _present(children)
        params = [c for c in rest if isinstance(c, ast.GroupParam)]
        body = [c for c in rest if not isinstance(c, ast.GroupParam)]
        return ast.GroupDef(self._name(name), params, body)

    def topology_def(self, meta: Meta, children: list[Any]) -> ast.TopologyDef:
        name, *body = children
        return ast.TopologyDef(self._name(name), body)

    def import_stmt(self, meta: Meta, children: list[Token]) -> ast.Import:
        lit = self.string(meta, [children[0]])
        return ast.Import(lit.value, lit.span)

    def start(self, meta: Meta, children: list[Any]) -> ast.Module:
        module = ast.Module(self.file)
        for item in children:
            if isinstance(item, ast.Import):
                module.imports.append(item)
            elif isinstance(item, ast.GroupDef):
                module.groups.append(item)
            elif isinstance(item, ast.TopologyDef):
                module.topologies.append(item)
        return module


def _expected_words(expected: set[str]) -> str:
    lark = _lark()
    words = set()
    for name in expected:
        if name in _WORDS:
            words.add(_WORDS[name])
            continue
        try:
            pattern = lark.get_terminal(name).pattern
        except KeyError:
            words.add(name.lower())
            continue
        words.add(f"'{pattern.value}'" if pattern.type == "str" else name.lower())
    # Everything that may start a value is said in two words, not eight.
    value_words = {"a name", "a string", "a number", "'['", "'{'", "'true'", "'false'", "'null'"}
    if value_words <= words:
        words = (words - value_words) | {"a value"}
    ordered = sorted(words)
    if len(ordered) <= 1:
        return "".join(ordered)
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def syntax_error(exc: UnexpectedInput, file: str, text: str) -> Diagnostic:
    """Turn a lark exception into a diagnostic that says what was expected, in words."""
    line, col = exc.line, exc.column
    if isinstance(exc, UnexpectedCharacters) and exc.char in "\"'":
        return error(
            "unterminated string",
            Span(file, line, col, col + 1),
            f"end the string with {exc.char} on the same line; write \\{exc.char} for a "
            "quote inside it",
        )
    if isinstance(exc, UnexpectedCharacters):
        char = exc.char
        shown = f"'{char}'" if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
        return error(
            f"unexpected character {shown}",
            Span(file, line, col, col + 1),
            f"names are ASCII letters, digits and '_', and {shown} is not ASCII"
            if char.isalpha()
            else "names are ASCII letters, digits and '_'; strings are quoted; '#' starts a "
            "comment",
        )
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        lines = text.splitlines() or [""]
        last = len(lines)
        end = len(lines[-1]) + 1
        return error(
            f"unexpected end of file; expected {_expected_words(set(exc.expected))}",
            Span(file, last, end, end + 1),
            "is a '}' or ')' missing?",
        )
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    expected = _expected_words(set(exc.expected))
    hint = _token_hint(expected)
    if "a name" in expected and str(tok) in RESERVED and tok.type != "NAME":
        hint = f"'{tok}' is a reserved word of the language and cannot be a name"
    # mid-statement (no statement could start here): the line above is unfinished
    mid = "'}'" not in expected and "'element'" not in expected
    before = _end_of_previous_line(text, tok) if mid else None
    if before is not None:
        # what is missing belongs at the end of the statement above, not at this token
        line, col = before
        return error(
            f"expected {expected} here (found {_found(tok)} on line {tok.line})",
            Span(file, line, col, col + 1),
            hint,
        )
    return error(f"unexpected {_found(tok)}; expected {expected}", _tok_span(file, tok), hint)


def _end_of_previous_line(text: str, tok: Token) -> tuple[int, int] | None:
    """(line, column) just after the last token before ``tok``, when ``tok`` starts its
    line and that token is on an earlier line; else None."""
    lines = text.splitlines()
    line = tok.line
    if line is None or tok.column is None or tok.start_pos is None:
        return None
    if lines[line - 1][: tok.column - 1].strip():
        return None
    # the text before ``tok`` ends with whitespace or a comment, so no token is cut
    last = None
    for last in _lark().lex(text[: tok.start_pos]):  # noqa: B007 - the last one is wanted
        pass
    if last is None or last.end_line is None or last.end_column is None:
        return None
    return last.end_line, last.end_column


def _token_hint(expected: str) -> str:
    """A likely cause, from what the parser expected instead."""
    if expected == "'='":
        return "write 'element NAME = Class(param=value, ...)'; parameters are name=value"
    if "','" in expected:
        return "separate arguments and items with ','; are the brackets ( ) [ ] { } balanced?"
    return "see docs/topo-language.md for the statements a topology may hold"


def _overflow(text: str, file: str, levels: int) -> Diagnostic | None:
    """An error when brackets nest so deep that building the tree could exhaust the stack."""
    found = bracket_overflow(text, MAX_DEPTH + levels)
    if found is None:
        return None
    line, col = found
    return error(too_deep(), Span(file, line, col, col + 1), DEPTH_HINT)


def parse(text: str, file: str) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse a whole file. On a syntax error, returns None and the one error."""
    text = strip_bom(text)
    deep = _overflow(text, file, _STATEMENT_LEVELS)
    if deep is not None:
        return None, [deep]
    try:
        tree = _lark().parse(text, start="start")
    except UnexpectedInput as exc:
        return None, [syntax_error(exc, file, text)]
    builder = _ToAst(file, text)
    module = builder.transform(tree)
    return module, builder.diagnostics


def parse_value(
    text: str, file: str = "<override>", line: int = 1, col: int = 1
) -> tuple[ast.Value | None, list[Diagnostic]]:
    """Parse a literal value (used for overrides) written at ``file:line:col``.

    Returns (None, []) if ``text`` is not a literal, and the value with errors if
    it is one that cannot be carried (too deep, a number out of range).
    """
    # Padding puts lark's positions where the value was written.
    padded = "\n" * (line - 1) + " " * (col - 1) + text
    deep = _overflow(padded, file, 0)
    if deep is not None:
        return None, [deep]
    try:
        tree = _lark().parse(padded, start="value")
    except UnexpectedInput:
        return None, []
    builder = _ToAst(file, padded)
    value = builder.transform(tree)
    return value, builder.diagnostics
