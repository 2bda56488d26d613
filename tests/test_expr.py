"""The Filter/Map expression language: values, null rules, and error messages."""

from __future__ import annotations

from typing import Any

import pytest

from datablox.elements.expr import FUNCTIONS, batch_filter, compile_expr
from datablox.errors import ExpressionError

RECORD: dict[str, Any] = {
    "value": 0.7,
    "n": 3,
    "key": "k3",
    "name": "Alice",
    "none": None,
    "flag": True,
    "tags": ["a", "b"],
    "candidate": {"magpsf": 17.2, "fid": 1, "deep": {"x": 1}},
    "t-emit": 5,
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # literals
        ("42", 42),
        ("-1.5e2", -150.0),
        (".5", 0.5),
        ("'single'", "single"),
        ('"double"', "double"),
        (r"'it\'s'", "it's"),
        (r"'tab\there'", "tab\there"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 'a', null, [2]]", [1, "a", None, [2]]),
        ("[]", []),
        ("[1, 2,]", [1, 2]),
        # fields
        ("value", 0.7),
        ("candidate.magpsf", 17.2),
        ("candidate.deep.x", 1),
        ("candidate.nothing", None),
        ("candidate.magpsf.deeper", None),
        ("missing", None),
        ("`t-emit`", 5),
        # logic (Python-like short circuit)
        ("value > 0.5 and n == 3", True),
        ("value > 0.9 or n == 3", True),
        ("not flag", False),
        ("not missing", True),
        ("none or 'default'", "default"),
        ("value > 0.5 and not (n < 2 or key == 'k0')", True),
        # comparisons
        ("n == 3", True),
        ("n != 3", False),
        ("n >= 3", True),
        ("n < 3", False),
        ("1 < n <= 3", True),
        ("1 < n < 3", False),
        ("key in ['k1', 'k3']", True),
        ("key not in ['k1', 'k3']", False),
        ("'a' in tags", True),
        ("'li' in name", True),
        ("key   not   in ['k1']", True),
        # null rules
        ("none == null", True),
        ("missing != null", False),
        ("none > 1", False),
        ("none <= 1", False),
        ("1 < none", False),
        ("none in [null]", False),
        ("none not in [1]", False),
        ("key in none", False),
        # arithmetic
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("-n", -3),
        ("- -n", 3),
        ("+n", 3),
        ("2 * -n", -6),
        ("'ab' + 'c'", "abc"),
        ("none + 1", None),
        ("-none", None),
        ("candidate.magpsf - 0.2 < 17.1", True),
        # functions
        ("len(name)", 5),
        ("len(tags)", 2),
        ("abs(-2)", 2),
        ("round(value * 10)", 7),
        ("round(2.3456, 2)", 2.35),
        ("lower(name)", "alice"),
        ("upper(key)", "K3"),
        ("str(n)", "3"),
        ("str(true)", "true"),
        ("str(tags)", '["a","b"]'),
        ("int('12') + 1", 13),
        ("int(3.9)", 3),
        ("float('2.5')", 2.5),
        ("startswith(name, 'Al')", True),
        ("endswith(name, 'x')", False),
        ("exists(candidate.magpsf)", True),
        ("exists(candidate.nothing)", False),
        ("exists(none)", True),
        ("exists(missing)", False),
        ("exists('candidate.fid')", True),
        ("len(none)", None),
        ("lower(missing)", None),
    ],
)
def test_evaluates(source: str, expected: Any) -> None:
    assert compile_expr(source)(RECORD) == expected


def test_compiled_once_used_many_times() -> None:
    keep = compile_expr("value > 0.5")
    assert [keep({"value": v}) for v in (0.1, 0.6, None)] == [False, True, False]


def test_record_is_not_changed() -> None:
    record = {"a": [1]}
    compile_expr("a + [2]")(record)
    assert record == {"a": [1]}


def test_non_map_path_step_reads_null() -> None:
    assert compile_expr("a.b")({"a": 5}) is None
    assert compile_expr("a.b")({"a": [1]}) is None


def _error(source: str, record: dict[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expr(source)(record if record is not None else RECORD)
    return info.value


@pytest.mark.parametrize(
    ("source", "column", "text", "hint"),
    [
        ("value > > 1", 9, "unexpected '>'", "expected a value"),
        ("value = 1", 7, "unexpected character '='", "use == to compare"),
        ("a && b", 3, "unexpected character '&'", "use 'and'"),
        ("a || b", 3, "unexpected character '|'", "use 'or'"),
        ("!a", 1, "unexpected character '!'", "use 'not'"),
        ("name == 'abc", 9, 'unexpected character "\'"', "string is not closed"),
        ("value >", 8, "the expression ends too early", "expected a value"),
        ("(a and b", 9, "ends too early", "close the '(' opened at column 1"),
        ("[1, 2", 6, "ends too early", "close the '[' opened at column 1"),
        ("a b", 3, "unexpected 'b'", "is an operator such as =="),
        ("a == 1 2", 8, "unexpected '2'", "operator"),
        ("1 +", 4, "ends too early", "expected a value"),
        ("a.", 3, "ends too early", None),
        ("`unclosed", 1, "unexpected character '`'", "quoted field name"),
    ],
)
def test_syntax_errors(source: str, column: int, text: str, hint: str | None) -> None:
    err = _error(source)
    assert err.column == column
    message = str(err)
    assert message.startswith(f"syntax error at column {column}: ")
    assert text in message
    # The caret sits under the column, after the two-space indent.
    lines = message.splitlines()
    assert lines[1] == "  " + source
    assert lines[2] == "  " + " " * (column - 1) + "^"
    if hint is not None:
        assert err.hint is not None and hint in err.hint


def test_empty_expression() -> None:
    for source in ("", "   "):
        err = _error(source)
        assert err.message == "empty expression"
        assert err.hint and "value > 0.5" in err.hint


def test_unknown_function_at_compile_time() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expr("value > 0 and lenn(name) > 2")
    err = info.value
    assert (
        err.message
        == "unknown function 'lenn' (column 15 of expression 'value > 0 and lenn(name) > 2')"
    )
    assert err.column == 15
    assert err.hint == "did you mean 'len'?"
    err = _error("frobnicate(x)")
    assert err.hint is not None and err.hint.startswith("functions: len, abs")


def test_wrong_arity_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match=r"len\(\) takes 1 argument\(s\), got 2"):
        compile_expr("len(a, b)")
    with pytest.raises(ExpressionError, match=r"round\(\) takes 1 or 2 argument\(s\), got 0"):
        compile_expr("round()")
    with pytest.raises(ExpressionError, match=r"exists\(\) takes a field name"):
        compile_expr("exists(1 + n)")


@pytest.mark.parametrize(
    ("source", "column", "text"),
    [
        ("name + 1", 6, "cannot apply '+' to str 'Alice' and int 1"),
        ("n / (n - 3)", 3, "division by zero: int 3 / int 0"),
        ("name < 1", 6, "cannot compare str 'Alice' < int 1"),
        ("n in name", 3, "cannot test int 3 in str 'Alice'"),
        ("-name", 1, "cannot apply unary '-' to str 'Alice'"),
        ("int(name)", 1, "int() cannot convert str 'Alice' to a number"),
        ("lower(n)", 1, "lower() needs a string, got int 3"),
        ("len(n)", 1, "len(int 3) failed"),
        ("tags * name", 6, "cannot apply '*' to list [\"a\",\"b\"] and str 'Alice'"),
    ],
)
def test_evaluation_errors(source: str, column: int, text: str) -> None:
    err = _error(source)
    assert err.column == column
    assert err.message == f"{text} (column {column} of expression {source!r})" or (
        err.message.startswith(text) and f"(column {column} of expression" in err.message
    )


def test_constant_type_errors_show_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match=r"cannot apply '\+' to str 'a' and int 1 \(column 5"):
        compile_expr("'a' + 1")


def test_no_python_evaluation() -> None:
    # Python syntax that is not in the language is a syntax error, never executed.
    for source in ("__import__('os').system('true')", "lambda: 1", "a[0]", "x; y"):
        with pytest.raises(ExpressionError):
            compile_expr(source)({"x": 1, "a": [1]})
    # Dotted names only ever read map keys, never attributes.
    assert compile_expr("x.__class__")({"x": 1}) is None


def test_function_table_documented() -> None:
    assert set(FUNCTIONS) >= {
        "len", "abs", "round", "lower", "upper", "str", "int", "float", "exists", "startswith",
    }  # fmt: skip
    assert all(f.doc for f in FUNCTIONS.values())


def test_multiline_source_is_joined() -> None:
    assert compile_expr("value > 0.5\n  and n == 3")(RECORD) is True


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_a_field_against_a_constant_filters_a_batch_as_record_by_record(op: str) -> None:
    ev = compile_expr(f"v {op} 2")
    keep = batch_filter(ev)
    assert keep is not None
    records = [{"v": v} for v in (0, 1, 2, 2.0, 3, -1.5, True, None)] + [{}, {"w": 5}]
    assert keep(records) == [r for r in records if ev(r)]
    assert [id(r) for r in keep(records)] == [id(r) for r in records if ev(r)]


def test_a_batch_filter_raises_where_record_by_record_evaluation_does() -> None:
    ev = compile_expr("v > 2")
    keep = batch_filter(ev)
    assert keep is not None
    with pytest.raises(TypeError):
        keep([{"v": 3}, {"v": "three"}])
    with pytest.raises(ExpressionError, match="cannot compare"):
        ev({"v": "three"})


def test_only_a_lone_comparison_has_a_batch_filter() -> None:
    assert batch_filter(compile_expr("v > 2 and w < 1")) is None
    assert batch_filter(compile_expr("v == 2")) is None
    assert batch_filter(compile_expr("(v > 2)")) is not None
