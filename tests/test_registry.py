"""Element classes are found by registered name (entry points) or as module:Class."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from datablox.errors import ElementClassError
from datablox.registry import registered, resolve

PLUGIN = '''
from datablox import Element, Param, push_in, push_out


class Tag(Element):
    """Adds a constant field.

    Ports: push in ``in``, push out ``out``. Parameters: ``value`` (str).
    """

    ports = (push_in("in"), push_out("out"))
    params = (Param("value", "str"),)

    def on_start(self, params):
        self.value = params["value"]

    def on_record(self, port, record):
        record["tag"] = self.value
        self.emit(record)
'''


def _plugin(root: Path) -> Path:
    """A third-party distribution registering Tag under datablox.elements."""
    site = root / "site"
    (site / "tagplugin").mkdir(parents=True)
    (site / "tagplugin" / "__init__.py").write_text(PLUGIN)
    info = site / "tagplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tagplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[datablox.elements]\nTag = tagplugin:Tag\n")
    return site


def test_builtins_are_registered_through_entry_points() -> None:
    names = registered()
    for name in ("Generate", "Filter", "Map", "JsonLinesSink", "KeyValueStore", "Director"):
        assert name in names
        assert resolve(name).__name__ == name


def test_unknown_names_suggest_a_close_one() -> None:
    with pytest.raises(ElementClassError) as err:
        resolve("Fliter")
    assert str(err.value) == "unknown element class 'Fliter'\n  hint: did you mean 'Filter'?"


def test_a_third_party_class_registered_by_entry_point_runs(tmp_path: Path) -> None:
    site = _plugin(tmp_path)
    (tmp_path / "tag.topo").write_text(
        "topology tagged {\n"
        "    element src = Generate(count=50)\n"
        '    element tag = Tag(value="x")\n'
        '    element out = JsonLinesSink(path="out/tagged.jsonl")\n'
        "    src -> tag -> out\n"
        "}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    cli = [sys.executable, "-c", "from datablox.master.cli import main; main()"]
    listed = subprocess.run([*cli, "classes"], env=env, capture_output=True, text=True, timeout=60)
    assert "Tag" in listed.stdout
    done = subprocess.run(
        [*cli, "run", "tag.topo", "--display", "quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "out" / "tagged.jsonl").read_text().splitlines()
    assert len(rows) == 50 and all('"tag":"x"' in row for row in rows)


def test_builtin_docstrings_give_each_parameter_its_declared_type() -> None:
    """docs/elements.md is written from these docstrings; "str or list" spells out "any"."""
    wrong = []
    for name in sorted(registered()):
        cls = resolve(name)
        declared = {p.name: p.type for p in cls.params}
        for m in re.finditer(r"^\s{8}(\w+) \(([^,()]+)(?:, [^)]*)?\):", cls.__doc__ or "", re.M):
            param, written = m.group(1), m.group(2)
            spelled_out = declared.get(param) == "any" and written == "str or list"
            if param in declared and written != declared[param] and not spelled_out:
                wrong.append(f"{name}.{param}: written {written}, declared {declared[param]}")
    assert wrong == []


def test_docs_list_every_parameter_of_each_builtin_with_its_type() -> None:
    """docs/elements.md has a section per general built-in (the JOIN family is in joins.md)."""
    text = (Path(__file__).resolve().parent.parent / "docs/elements.md").read_text()
    sections = dict(re.findall(r"^### (\w+)\n(.*?)(?=^##)", text + "\n##", re.M | re.S))
    assert len(sections) >= 14
    missing = []
    for name, body in sections.items():
        for p in resolve(name).params:
            if f"- `{p.name}` ({p.type}," not in body:
                missing.append(f"{name}.{p.name} ({p.type})")
    assert missing == []
