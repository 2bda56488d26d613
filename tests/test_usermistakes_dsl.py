"""A new user's mistakes, through the dsl API: each is a positioned error, never a traceback."""

# ruff: noqa: E501  (expected compiler output is compared verbatim, long lines included)

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from datablox import registry
from datablox.dsl import classes, compile_file, compile_source, load_tradecraft
from datablox.dsl.limits import MAX_DEPTH
from datablox.elements import transforms
from datablox.errors import TopologyError

USER_MODULE = """
from datablox import Element, Source
from datablox.ports import Param, push_in, push_out


class Src(Source):
    ports = (push_out("out"),)
    params = (Param("n", "int", default=3), Param("data", "path|null", default=None))

    def generate(self):
        yield from ({"i": i} for i in range(self.n))


class Sink(Element):
    ports = (push_in("in"),)

    def on_record(self, port, record):
        pass


class BadDecl(Element):
    ports = (push_in("in"),)
    params = (Param("x", "integer"),)
"""


def failure(text: str, tmp_path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(TopologyError) as info:
        compile_source(textwrap.dedent(text).lstrip("\n"), str(tmp_path / "t.topo"), overrides)
    out = str(info.value)
    assert out.startswith("error: "), out
    return out.replace(str(tmp_path) + "/", "")


def block(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---- 1. numbers the codec cannot carry ------------------------------------------
def test_an_integer_beyond_64_bits_is_a_positioned_error(tmp_path: Path) -> None:
    out = failure(
        """
        topology t {
            element src = Generate(seed=99999999999999999999999)
        }
        """,
        tmp_path,
    )
    assert out == block(
        """
        error: integer 99999999999999999999999 cannot be carried: it is outside the signed 64-bit range
         --> t.topo:2:33
          |
        2 |     element src = Generate(seed=99999999999999999999999)
          |                                 ^^^^^^^^^^^^^^^^^^^^^^^
          = hint: records and parameters carry 64-bit integers and finite floats only
        """
    )


def test_an_infinite_float_is_a_positioned_error(tmp_path: Path) -> None:
    out = failure("topology t { element src = Generate(rate=-1e999) }", tmp_path)
    assert "error: number -1e999 (= -inf) cannot be carried: it is not finite" in out
    assert " --> t.topo:1:42" in out


def test_the_64_bit_edges_are_accepted(tmp_path: Path) -> None:
    for edge in (2**63 - 1, -(2**63)):
        text = f"topology t {{ element s = Generate(seed={edge}) }}"
        compiled = compile_source(text, str(tmp_path / "t.topo")).tradecraft
        assert compiled["elements"][0]["params"] == {"seed": edge}


def test_an_override_out_of_range_points_into_the_override(tmp_path: Path) -> None:
    out = failure(
        "topology t { element src = Generate() }",
        tmp_path,
        ("src.count=5", "src.seed = [1, 1e400]"),
    )
    assert out == block(
        """
        error: number 1e400 (= inf) cannot be carried: it is not finite
         --> override:2:16
          |
        2 | src.seed = [1, 1e400]
          |                ^^^^^
          = hint: records and parameters carry 64-bit integers and finite floats only
        """
    )


def _tradecraft(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "tradecraft": 1,
        "name": "t",
        "elements": [{"name": "src", "class": "Generate", "params": params}],
    }


def test_tradecraft_json_names_the_element_and_parameter(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_tradecraft({"seed": 2**64, "rate": float("nan")})))
    with pytest.raises(TopologyError) as info:
        load_tradecraft(path)
    out = str(info.value)
    assert (
        "error: parameter 'seed' of element 'src': integer 18446744073709551616 cannot be carried"
        in out
    )
    assert "error: parameter 'rate' of element 'src': number nan cannot be carried" in out
    assert "t.json: elements[0].params.rate" in out


# ---- 2. deep nesting ---------------------------------------------------------------
def test_a_list_nested_700_deep_in_a_topo_is_a_positioned_error(tmp_path: Path) -> None:
    out = failure(f"topology t {{\n  element s = Generate(keys={nested(700)})\n}}", tmp_path)
    assert out.startswith(f"error: value nested more than {MAX_DEPTH} levels deep\n --> t.topo:2:")
    assert f"= hint: lists and maps may nest at most {MAX_DEPTH} levels deep" in out


def test_the_limit_is_exactly_100_levels(tmp_path: Path) -> None:
    ok = f"topology t {{ element s = cases_free:X(v={nested(MAX_DEPTH)}) }}"
    with pytest.raises(TopologyError) as info:  # fails on the class, not on the value
        compile_source(ok, str(tmp_path / "t.topo"))
    assert "nested" not in str(info.value)
    out = failure(f"group G(v={nested(MAX_DEPTH + 1)}) {{ }}\ntopology t {{ }}", tmp_path)
    assert "error: value nested more than 100 levels deep\n --> t.topo:1:11" in out


def test_a_deep_override_is_an_error_not_a_recursion(tmp_path: Path) -> None:
    out = failure("topology t { element s = Generate() }", tmp_path, (f"s.keys={nested(800)}",))
    assert "error: value nested more than 100 levels deep\n --> override:1:108" in out


def test_deep_tradecraft_json_file_and_dict(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(_tradecraft({"keys": 1})).replace('"keys": 1', f'"keys": {nested(900)}')
    )
    with pytest.raises(TopologyError) as info:
        load_tradecraft(path)
    assert str(info.value).startswith("error: value nested more than 100 levels deep\n --> ")
    deep: list[Any] = []
    for _ in range(900):
        deep = [deep]
    with pytest.raises(TopologyError) as info:
        load_tradecraft(_tradecraft({"keys": deep}))
    assert "parameter 'keys' of element 'src': value nested more than 100 levels deep" in str(
        info.value
    )


# ---- 4. user modules that end the process while imported ------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("import sys\nsys.exit(3)\n", "module 'um_{n}' called sys.exit(3) while being imported"),
        (
            "import os\nos._exit(0)\n",
            "module 'um_{n}' ended the process (os._exit(0)) while being imported",
        ),
        (
            "raise KeyboardInterrupt\n",
            "module 'um_{n}' raised KeyboardInterrupt while being imported",
        ),
    ],
)
def test_a_module_ending_the_process_is_reported(tmp_path: Path, body: str, message: str) -> None:
    n = abs(hash(body)) % 10**8  # a fresh module name per case: nothing cached anywhere
    (tmp_path / f"um_{n}.py").write_text(body)
    (tmp_path / "um_ok.py").write_text(USER_MODULE)
    out = failure(
        f"""
        topology t {{
            element a = um_ok:Src()
            element b = um_{n}:Thing()
            a -> b
        }}
        """,
        tmp_path,
    )
    assert out.startswith(f"error: {message.format(n=n)}\n --> t.topo:3:17\n")
    assert "^^^" in out


def test_all_user_classes_are_inspected_in_one_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "um_many.py").write_text(USER_MODULE)
    calls: list[dict[str, Any]] = []
    real = classes._run_probe

    def counted(checks: dict[str, Any]) -> Any:
        calls.append(checks)
        return real(checks)

    monkeypatch.setattr(classes, "_run_probe", counted)
    text = """
        topology t {
            element a = um_many:Src(n=5)
            element b = um_many:Sink()
            element c = um_many:Sink()
            element f = Filter(where="i > 1")
            a -> f -> b
        }
        """
    compile_source(textwrap.dedent(text), str(tmp_path / "t.topo"))
    assert len(calls) == 1
    assert sorted(calls[0]) == ["um_many:Sink", "um_many:Src"]


# ---- 5. smaller things -------------------------------------------------------------
def test_an_unterminated_string_says_so(tmp_path: Path) -> None:
    out = failure('topology t {\n    element f = Filter(where="x > 1)\n}\n', tmp_path)
    assert out.startswith("error: unterminated string\n --> t.topo:2:30\n")
    assert "  |                              ^\n" in out


def test_non_utf8_bytes_are_given_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.topo"
    path.write_bytes(b"topology t {\n    # caf\xe9\n}\n")
    with pytest.raises(TopologyError) as info:
        compile_file(str(path))
    out = str(info.value)
    assert (
        f"error: this file is not UTF-8 text: byte(s) e9 cannot be decoded\n --> {path}:2:10\n"
        in out
    )
    assert "  |          ^" in out


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.topo"
    path.write_bytes("\ufefftopology t {\n  element s = Generate()\n}\n".encode())
    assert compile_file(str(path)).tradecraft["name"] == "t"
    assert compile_source("\ufefftopology u { }").tradecraft["name"] == "u"


def test_filter_and_map_expressions_are_parsed_by_check(tmp_path: Path) -> None:
    out = failure(
        """
        topology t {
            element f = Filter(where="value >")
            element m = Map(set={"a": "1 +* 2"})
        }
        """,
        tmp_path,
    )
    assert (
        block(
            """
        error: parameter 'where' of Filter: syntax error at column 8: the expression ends too early
         --> t.topo:2:38
          |
        2 |     element f = Filter(where="value >")
          |                                      ^
        """
        )
        in out
    )
    assert (
        block(
            """
        error: parameter 'set.a' of Map: syntax error at column 4: unexpected '*'
         --> t.topo:3:35
          |
        3 |     element m = Map(set={"a": "1 +* 2"})
          |                                   ^
        """
        )
        in out
    )


def test_a_map_with_no_operation_fails_check(tmp_path: Path) -> None:
    out = failure("topology t { element m = Map() }", tmp_path)
    assert "error: Map needs at least one of: set, drop, fn" in out


def test_an_unknown_param_type_is_the_class_fault(tmp_path: Path) -> None:
    (tmp_path / "um_decl.py").write_text(USER_MODULE)
    out = failure("topology t { element b = um_decl:BadDecl(x=3) }", tmp_path)
    assert out.startswith(
        "error: element class 'um_decl:BadDecl' declares Param('x', 'integer'): "
        "unknown type name 'integer'\n"
    )
    assert "parameter types are any, str, path, int" in out
    assert "must be integer" not in out


def test_relative_path_params_resolve_against_the_topo_folder(tmp_path: Path) -> None:
    (tmp_path / "um_paths.py").write_text(USER_MODULE)
    (tmp_path / "sub").mkdir()
    topo = tmp_path / "sub" / "t.topo"
    topo.write_text(
        "topology t {\n"
        '  element a = um_paths:Src(data="in/x.csv")\n'
        '  element b = um_paths:Src(data="/abs/y.csv")\n'
        "  element c = um_paths:Sink()\n"
        "  a -> c\n  b -> c\n}\n"
    )
    registry.add_search_path(str(tmp_path))
    tc = compile_file(str(topo)).tradecraft
    data = [e["params"].get("data") for e in tc["elements"]]
    assert data == [str(tmp_path / "sub" / "in" / "x.csv"), "/abs/y.csv", None]
    over = compile_file(str(topo), ['a.data="o/z.csv"']).tradecraft
    assert over["elements"][0]["params"]["data"] == str(tmp_path / "sub" / "o" / "z.csv")
    # the compiled tradecraft carries absolute paths, so it means the same from anywhere
    assert load_tradecraft(tc).tradecraft["elements"][0]["params"] == tc["elements"][0]["params"]


def test_map_fn_is_imported_by_the_registry() -> None:
    assert transforms._load_function("json:dumps") is json.dumps
