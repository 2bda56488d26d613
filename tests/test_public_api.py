"""The public surface: `datablox.__all__`, module docstrings, element class documentation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import datablox
from datablox.registry import registered, resolve

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["datablox", "dsl", "master", "caretaker", "elements", "shards"]
MODULES = sorted(str(p.relative_to(REPO)) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))

PUBLIC_API = [
    "PARTITIONS",
    "REQUIRED",
    "CodecError",
    "DatabloxError",
    "Element",
    "ElementClassError",
    "ElementError",
    "ExpressionError",
    "FileSink",
    "Param",
    "ParameterError",
    "Port",
    "ProtocolError",
    "QueryError",
    "QueryTimeout",
    "Record",
    "RunError",
    "Source",
    "TopologyError",
    "__version__",
    "owner_of",
    "partition_of",
    "push_in",
    "push_out",
    "query_in",
    "query_out",
    "run",
]


def test_the_public_api_is_exactly_the_intended_names() -> None:
    assert sorted(datablox.__all__) == sorted(PUBLIC_API)
    assert len(set(datablox.__all__)) == len(datablox.__all__)


def test_every_public_name_exists() -> None:
    namespace: dict[str, object] = {}
    exec("from datablox import *", namespace)
    for name in PUBLIC_API:
        assert hasattr(datablox, name), name
        assert name in namespace, name


def test_every_public_error_derives_from_the_root_error() -> None:
    errors = [getattr(datablox, n) for n in PUBLIC_API if n.endswith(("Error", "Timeout"))]
    assert len(errors) == 11
    assert all(issubclass(e, datablox.DatabloxError) for e in errors)


def test_the_version_matches_the_installed_package() -> None:
    from importlib.metadata import version

    assert datablox.__version__ == version("datablox")


def test_the_packages_hold_modules() -> None:
    assert len(MODULES) > 40
    assert "master/cli.py" in MODULES and "datablox/runtime/process.py" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_a_one_line_docstring(module: str) -> None:
    doc = ast.get_docstring(ast.parse((REPO / module).read_text()))
    assert doc, f"{module} has no module docstring"
    lines = doc.splitlines()
    summary = lines[0]
    assert summary.strip() and summary.endswith("."), (
        f"{module}: the docstring must open with a one-line summary sentence: {summary!r}"
    )
    assert len(summary) <= 100, f"{module}: the summary line is longer than 100 characters"
    assert len(lines) == 1 or lines[1] == "", (
        f"{module}: the summary must be one line, followed by a blank line"
    )


CLASSES = sorted(registered())


def _documented_names(doc: str) -> str:
    return re.sub(r"[`*]", "", doc)


@pytest.mark.parametrize("name", CLASSES)
def test_every_registered_class_documents_its_ports_and_parameters(name: str) -> None:
    cls = resolve(name)
    doc = cls.__doc__
    assert doc and doc.strip(), f"{name} has no docstring"
    text = _documented_names(doc)
    for port in cls.ports:
        assert re.search(rf"\b{re.escape(port.name)} \((push|query) (in|out)\)", text), (
            f"{name}'s docstring does not describe port '{port.name}' as "
            f"'{port.name} ({port.kind} {port.direction})'"
        )
    assert ("Parameters:" in text) or not cls.params
    for param in cls.params:
        assert re.search(rf"^\s+{re.escape(param.name)} \(", text, re.MULTILINE), (
            f"{name}'s docstring does not describe parameter '{param.name}'"
        )
    assert "Bad input" in text, f"{name}'s docstring does not say what happens on bad input"


BUILT_IN = ["Count", "CsvSource", "Director", "FileCrawler", "Filter", "Generate"]
BUILT_IN += [
    "Enrichment",
    "EnrichmentRows",
    "JoinMember",
    "PostJoin",
    "PreJoin",
    "WindowJoinMember",
    "JsonLinesSink",
    "JsonLinesSource",
    "KeyCount",
    "KeyValueStore",
    "Lookup",
    "Manager",
    "Map",
    "Null",
]


def test_the_registered_classes_are_the_built_in_library() -> None:
    assert sorted(BUILT_IN) == CLASSES
