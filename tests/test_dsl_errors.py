"""Mistakes in classes, parameters, ports and connections: message, file:line:col, caret, hint."""

# ruff: noqa: E501  (expected compiler output is compared verbatim, long lines included)

from __future__ import annotations

from datablox.dsl import compile_source
from tests.dsl_errors_support import _in_cases, block, expect, rendered  # noqa: F401


def test_unknown_registered_class_suggests_a_name() -> None:
    out = expect(
        """
        topology t {
            element f = Fliter(where="x > 1")
        }
        """,
        """
        error: unknown element class 'Fliter'
         --> t.topo:2:17
          |
        2 |     element f = Fliter(where="x > 1")
          |                 ^^^^^^
          = hint: did you mean 'Filter'?
        """,
    )
    assert out.count("error:") == 1


def test_unknown_class_suggests_a_group() -> None:
    expect(
        """
        group Stage() { element f = cases:Thing() }
        topology t {
            element s = Stagee()
        }
        """,
        "= hint: did you mean group 'Stage'?",
    )


def test_unknown_class_in_user_module() -> None:
    expect(
        """
        topology t {
            element a = cases:Srcc()
        }
        """,
        """
        error: module 'cases' has no class 'Srcc'
         --> t.topo:2:17
          |
        2 |     element a = cases:Srcc()
          |                 ^^^^^^^^^^
          = hint: did you mean 'Src'?
        """,
    )


def test_user_module_that_cannot_be_imported() -> None:
    expect(
        """
        topology t {
            element b = nosuch.mod:X()
            element c = brokenmod:X()
        }
        """,
        """
        error: cannot import module 'nosuch.mod' for element class 'nosuch.mod:X': no module named 'nosuch'
         --> t.topo:2:17
          |
        2 |     element b = nosuch.mod:X()
          |                 ^^^^^^^^^^^^
          = hint: check the spelling""",
        """
        error: importing module 'brokenmod' for element class 'brokenmod:X' failed: RuntimeError: boom while importing
         --> t.topo:3:17
          |
        3 |     element c = brokenmod:X()
          |                 ^^^^^^^^^^^
        """,
    )


def test_parameter_errors() -> None:
    expect(
        """
        topology t {
            element s = cases:Src(count="ten", cuont=1)
            element k = cases:Filt()
            element d = cases:Sink(path="a", path="b")
        }
        """,
        """
        error: parameter 'count' of cases:Src must be int, got str 'ten'
         --> t.topo:2:33
          |
        2 |     element s = cases:Src(count="ten", cuont=1)
          |                                 ^^^^^
        """,
        """
        error: cases:Src has no parameter 'cuont'
         --> t.topo:2:40
          |
        2 |     element s = cases:Src(count="ten", cuont=1)
          |                                        ^^^^^
          = hint: did you mean 'count'?
        """,
        """
        error: cases:Filt needs parameter 'where' (str)
         --> t.topo:3:17
          |
        3 |     element k = cases:Filt()
          |                 ^^^^^^^^^^
        """,
        """
        error: parameter 'path' given twice
         --> t.topo:4:38
          |
        4 |     element d = cases:Sink(path="a", path="b")
          |                                      ^^^^
          = hint: first given at t.topo:4:28
        """,
    )


def test_unknown_port_lists_the_ports() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element d = cases:Sink()
            s.ot -> d.in
        }
        """,
        """
        error: element 's' (cases:Src) has no port 'ot'
         --> t.topo:4:7
          |
        4 |     s.ot -> d.in
          |       ^^
          = hint: did you mean 'out'? its ports: out (out push)
        """,
    )


def test_unknown_element_in_connection() -> None:
    expect(
        """
        topology t {
            element src = cases:Src()
            srx.out -> src.in
        }
        """,
        """
        error: unknown element 'srx'
         --> t.topo:3:5
          |
        3 |     srx.out -> src.in
          |     ^^^
          = hint: did you mean 'src'?
        """,
    )


def test_wrong_direction() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element d = cases:Sink()
            d.in -> s.out
        }
        """,
        """
        error: cannot connect from 'd.in': it is an in-port
         --> t.topo:4:7
          |
        4 |     d.in -> s.out
          |       ^^
          = hint: the left side of a connection is an out-port; are the sides swapped?
        """,
        """
        error: cannot connect to 's.out': it is an out-port
         --> t.topo:4:15
          |
        4 |     d.in -> s.out
          |               ^^^
          = hint: the right side of a connection is an in-port; are the sides swapped?
        """,
    )


def test_push_connected_to_query() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element d = cases:Sink()
            element p = cases:Probe()
            s.out -> d.lookup
            s.out ?> d.in
            p.ask -> d.lookup
        }
        """,
        """
        error: push connected to query: s.out is a push port but d.lookup is a query port
         --> t.topo:5:16
          |
        5 |     s.out -> d.lookup
          |                ^^^^^^
          = hint: a connection joins two push ports (->) or two query ports (?>)
        """,
        """
        error: push connected to query: '?>' joins query ports, but s.out and d.in are push ports
         --> t.topo:6:5
          |
        6 |     s.out ?> d.in
          |     ^^^^^^^^^^^^^
          = hint: use '->' for a push connection
        """,
        """
        error: push connected to query: '->' joins push ports, but p.ask and d.lookup are query ports
         --> t.topo:7:5
          |
        7 |     p.ask -> d.lookup
          |     ^^^^^^^^^^^^^^^^^
          = hint: use '?>' for a query connection
        """,
    )


def test_incompatible_record_fields() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element k = cases:StrSink()
            s -> k
        }
        """,
        """
        error: record field 'x' is int from s.out but k.in needs str
         --> t.topo:4:5
          |
        4 |     s -> k
          |     ^^^^^^
          = hint: convert it on the way, e.g. with a Map element
        """,
        """
        error: record field 'y' (float) needed by k.in is not produced by s.out
         --> t.topo:4:5
          |
        4 |     s -> k
          |     ^^^^^^
          = hint: s.out produces: x (int), name (str)
        """,
    )


def test_compatible_fields_pass() -> None:
    compile_source("topology t { element s = cases:Src() element d = cases:Sink() s -> d }")


def test_ambiguous_and_missing_bare_ports() -> None:
    expect(
        """
        topology t {
            element sp = cases:Split()
            element p = cases:Probe()
            element y = cases:Thing()
            sp -> y
            p -> y
        }
        """,
        """
        error: 'sp' has 2 push out-ports (a, b); say which one
         --> t.topo:5:5
          |
        5 |     sp -> y
          |     ^^
          = hint: write sp.a
        """,
        """
        error: 'p' has no push out-port to connect from
         --> t.topo:6:5
          |
        6 |     p -> y
          |     ^
          = hint: its ports: ask (out query)
        """,
    )
