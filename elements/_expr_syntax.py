"""Syntax-error messages for the expression language: the column, a caret and a hint."""

from __future__ import annotations

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from datablox.errors import ExpressionError

__all__ = ["syntax_error"]

_VALUE_START = {
    "INT", "FLOAT", "STRING", "NAME", "QUOTED_NAME", "TRUE", "FALSE", "NULL",
    "LBRACKET", "LPAR", "ADD_OP", "NOT",
}  # fmt: skip
_WORDS = {
    "RPAR": "')'",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "CMP": "a comparison (== != < <= > >=)",
    "IN": "'in'",
    "NOT_IN": "'not in'",
    "ADD_OP": "an operator (+ - * / // %)",
    "MUL_OP": "an operator (+ - * / // %)",
    "AND": "'and'",
    "OR": "'or'",
    "$END": "the end of the expression",
}
_CHAR_HINTS = {
    "=": "use == to compare",
    "&": "use 'and' to combine conditions",
    "|": "use 'or' to combine conditions",
    "!": "use 'not' to negate, or != to compare",
    "'": "a string is not closed: end it with a matching quote",
    '"': "a string is not closed: end it with a matching quote",
    "`": "a `quoted field name` is not closed",
}


def _expected(names: set[str]) -> str:
    words: list[str] = []
    if names & _VALUE_START:
        words.append("a value (number, 'string', field, true/false/null, [list], call or '(')")
    for name in sorted(names - _VALUE_START):
        word = _WORDS.get(name, name)
        if word not in words:
            words.append(word)
    return "expected " + ", or ".join(words) if words else ""


def _unclosed(source: str) -> str | None:
    """A hint naming the innermost bracket left open, ignoring those inside strings."""
    stack: list[tuple[str, int]] = []
    quote = None
    for i, ch in enumerate(source):
        if quote:
            quote = None if ch == quote and source[i - 1] != "\\" else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "([":
            stack.append((ch, i + 1))
        elif ch in ")]" and stack:
            stack.pop()
    if not stack:
        return None
    ch, col = stack[-1]
    return f"close the '{ch}' opened at column {col} with '{')' if ch == '(' else ']'}'"


def syntax_error(source: str, exc: UnexpectedInput) -> ExpressionError:
    column = getattr(exc, "column", None)
    hint = None
    if isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {exc.char!r}"
        hint = _CHAR_HINTS.get(exc.char) or _expected(set(exc.allowed or ()))
    elif isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        token = getattr(exc, "token", None)
        if token is None or token.type == "$END":
            what, column = "the expression ends too early", len(source) + 1
            hint = _unclosed(source)
        else:
            what = f"unexpected {str(token)!r}"
            if token.type in _VALUE_START and token.type not in ("ADD_OP", "NOT", "LPAR"):
                hint = "two values in a row: is an operator such as ==, 'and' or + missing?"
        hint = hint or _expected(set(exc.expected or ()))
    else:  # pragma: no cover - lark raises only the kinds above
        what = str(exc)
    caret = ""
    if column is not None and column > 0:
        caret = f"\n  {source}\n  {' ' * (column - 1)}^"
    return ExpressionError(f"syntax error at column {column}: {what}{caret}", column, hint)
