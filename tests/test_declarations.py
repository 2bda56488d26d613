"""Element classes whose declarations cannot work are the class's fault, said at check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import TRACEBACK, console_script

MODULE = """
from datablox import Element, Param, push_in, push_out, query_in, query_out


class NoHandler(Element):
    ports = (push_in("in"),)


class WrongSignature(Element):
    ports = (push_in("in"),)

    def on_record(self, record):
        pass


class NoAnswer(Element):
    ports = (query_in("get"),)


class BadDefault(Element):
    ports = (push_in("in"),)
    params = (Param("x", "int", "notanint"),)

    def on_record(self, port, record):
        pass


class TwoParams(Element):
    ports = (push_in("in"),)
    params = (Param("x", "int", 1), Param("x", "str", "a"))

    def on_record(self, port, record):
        pass


class SpacedPort(Element):
    ports = (push_in("in put"),)

    def on_record(self, port, record):
        pass


class ReservedPort(Element):
    ports = (push_in("element"),)

    def on_record(self, port, record):
        pass


class PortsString(Element):
    ports = "in"


class Asker(Element):
    ports = (push_in("in"), query_out("ask"))

    def on_record(self, port, record):
        self.ask("ask", record)
"""


@pytest.mark.parametrize(
    ("cls", "says"),
    [
        ("NoHandler", "has push in-port 'in' but defines no on_record or on_batch"),
        (
            "WrongSignature",
            "defines on_record(self, record), but the runtime calls it as (self, port, record)",
        ),
        ("NoAnswer", "has query in-port 'get' but defines no on_query"),
        ("BadDefault", "declares Param('x', 'int') with the default 'notanint', which is not"),
        ("TwoParams", "declares the parameter 'x' twice"),
        ("SpacedPort", "declares port 'in put', a name a .topo file cannot spell"),
        ("ReservedPort", "declares port 'element', a reserved word of the .topo language"),
        ("PortsString", "declares ports = 'in'; it must be a tuple of Port"),
    ],
)
def test_a_class_whose_declarations_cannot_work_fails_check(
    tmp_path: Path, cls: str, says: str
) -> None:
    (tmp_path / "decl.py").write_text(MODULE)
    (tmp_path / "t.topo").write_text(
        "topology t {\n"
        "    element src = Generate(count=10)\n"
        f"    element x = decl:{cls}()\n"
        "    src -> x\n"
        "}\n"
    )
    done = subprocess.run(
        [console_script("datablox-master"), "check", "t.topo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stderr
    assert f"element class 'decl:{cls}' {says}" in done.stderr, done.stderr
    assert "t.topo:3:" in done.stderr, "points at the class reference"
    assert "must not end the program" not in done.stderr, "not blamed on the import"
    assert not TRACEBACK.search(done.stderr)


def test_an_unconnected_query_out_port_is_a_warning_at_check(tmp_path: Path) -> None:
    (tmp_path / "decl.py").write_text(MODULE)
    (tmp_path / "t.topo").write_text(
        "topology t {\n"
        "    element src = Generate(count=10)\n"
        "    element x = decl:Asker()\n"
        "    src -> x\n"
        "}\n"
    )
    done = subprocess.run(
        [console_script("datablox-master"), "check", "t.topo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "query out-port 'x.ask' is not connected: every question asked on it fails" in (
        done.stderr + done.stdout
    )
