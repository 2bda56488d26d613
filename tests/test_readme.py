"""The README tutorial works when copied: its files, its commands and its error example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson

README = Path(__file__).resolve().parent.parent / "README.md"


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def _tutorial(tmp_path: Path) -> str:
    text = README.read_text()
    files = re.findall(r"```\w+ file=(\S+)\n(.*?)```", text, re.S)
    assert {name for name, _ in files} == {"shout.py", "hello.topo"}
    for name, body in files:
        (tmp_path / name).write_text(body)
    return text


def test_the_tutorial_commands_run_as_written(tmp_path: Path) -> None:
    text = _tutorial(tmp_path)
    commands = re.search(r"```sh tutorial\n(.*?)```", text, re.S)
    assert commands is not None
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands.group(1)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ok: hello.topo: topology 'hello', 4 elements, 3 connections" in done.stdout
    rows = [
        orjson.loads(line)
        for line in (tmp_path / "out/hello.jsonl").read_bytes().split(b"\n")
        if line
    ]
    # the README promises "about 40,000 records" and shows the first one
    assert 38_000 < len(rows) < 42_000
    assert all(r["key"].isupper() and r["value"] > 0.5 and r["key"] != "K0" for r in rows)
    first = re.search(r"records such as `(\{.*?\})`", text)
    assert first is not None and rows[0] == orjson.loads(first.group(1))
    summary = orjson.loads((tmp_path / "out/summary.json").read_bytes())
    assert summary["exit_code"] == 0 and summary["elements"]["out"]["in"] == len(rows)


def test_the_tutorial_error_example_is_what_check_prints(tmp_path: Path) -> None:
    text = _tutorial(tmp_path)
    topo = tmp_path / "hello.topo"
    topo.write_text(topo.read_text().replace("Filter(where", "Fliter(where"))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from datablox.master.cli import main; main()",
            "check",
            "hello.topo",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    shown = re.search(r"```text\n(error: unknown element class.*?)```", text, re.S)
    assert shown is not None
    assert done.stderr.strip() == shown.group(1).strip()
    assert "Traceback" not in done.stderr


def test_the_harness_example_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    harness = [b for b in blocks if "ElementHarness(" in b]
    assert len(harness) == 1
    (tmp_path / "example.py").write_text(harness[0])
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
