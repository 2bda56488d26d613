"""The `datablox-master` and `datablox-caretaker` commands, run as installed console scripts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer

from datablox import dsl
from datablox.caretaker.cli import app as caretaker_app
from datablox.master.cli import app as master_app
from datablox.registry import registered, resolve
from tests.conftest import TRACEBACK, assert_no_element_processes, console_script

TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"
EXAMPLES = sorted(p.name for p in TOPOLOGIES.glob("*.topo"))


def cli(
    *args: str, cwd: Path, script: str = "datablox-master", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [console_script(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert not TRACEBACK.search(proc.stdout + proc.stderr), proc.stdout + proc.stderr
    return proc


@pytest.fixture
def topos(tmp_path: Path) -> Path:
    """A copy of topologies/ to run commands in."""
    shutil.copytree(TOPOLOGIES, tmp_path / "topologies")
    return tmp_path / "topologies"


# ---- check ------------------------------------------------------------------
@pytest.mark.parametrize("filename", EXAMPLES)
def test_check_accepts_every_example(topos: Path, filename: str) -> None:
    tc = dsl.compile_file(str(topos / filename)).tradecraft
    proc = cli("check", filename, cwd=topos)
    assert proc.returncode == 0, proc.stderr
    n, c = len(tc["elements"]), len(tc["connections"])
    assert proc.stdout == (
        f"ok: {filename}: topology '{tc['name']}', {n} element{'s' * (n != 1)}, "
        f"{c} connection{'s' * (c != 1)}\n"
    )


BAD = {
    "unknown_class": (
        """topology bad {
    element src = Generat(count=10)
    element out = Count()
    src -> out
}
""",
        [
            "error: unknown element class 'Generat'",
            " --> bad.topo:2:19",
            "2 |     element src = Generat(count=10)",
            "  |                   ^^^^^^^",
            "= hint: did you mean 'Generate'?",
        ],
    ),
    "unknown_port": (
        """topology bad {
    element src = Generate(count=10)
    element out = Count()
    src.outt -> out.in
}
""",
        [
            "error: element 'src' (Generate) has no port 'outt'",
            " --> bad.topo:4:9",
            "4 |     src.outt -> out.in",
            "  |         ^^^^",
            "= hint: did you mean 'out'?",
        ],
    ),
    "missing_param": (
        """topology bad {
    element src = Generate(count=10)
    element out = JsonLinesSink()
    src -> out
}
""",
        [
            "error: JsonLinesSink needs parameter 'path' (path)",
            " --> bad.topo:3:19",
            "3 |     element out = JsonLinesSink()",
            "  |                   ^^^^^^^^^^^^^",
            "= hint: output file; parent folders are created",
        ],
    ),
    "unclosed_brace": (
        """topology bad {
    element src = Generate(count=10)
    element out = Count()
    src -> out
""",
        [
            "error: unexpected end of file; expected",
            " --> bad.topo:4:15",
            "4 |     src -> out",
            "  |               ^",
            "= hint: is a '}' or ')' missing?",
        ],
    ),
    "unclosed_paren": (
        """topology bad {
    element src = Generate(count=10
    element out = Count()
    src -> out
}
""",
        [
            "error: unexpected 'element'; expected ')'",
            " --> bad.topo:3:5",
            "3 |     element out = Count()",
            "  |     ^^^^^^^",
        ],
    ),
}


# compile and run load files as check does; two cases show they report the same way
BAD_CASES = [(case, "check") for case in sorted(BAD)] + [
    (case, command)
    for case in ("unknown_class", "unclosed_paren")
    for command in ("compile", "run")
]


@pytest.mark.parametrize(("case", "command"), BAD_CASES)
def test_a_bad_topology_exits_2_with_file_line_column_caret_and_hint(
    tmp_path: Path, case: str, command: str
) -> None:
    text, expected = BAD[case]
    (tmp_path / "bad.topo").write_text(text)
    proc = cli(command, "bad.topo", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    for fragment in expected:
        assert fragment in proc.stderr, f"{fragment!r} not in:\n{proc.stderr}"


@pytest.mark.parametrize("command", ["check", "compile", "run"])
def test_a_missing_file_exits_2_without_a_traceback(tmp_path: Path, command: str) -> None:
    proc = cli(command, "missing.topo", cwd=tmp_path)
    assert proc.returncode == 2
    assert "missing.topo" in proc.stderr
    assert "no such file" in proc.stderr


# ---- compile and --set -------------------------------------------------------
def test_compile_prints_the_tradecraft_json_of_the_topology(topos: Path) -> None:
    proc = cli("compile", "enrich.topo", cwd=topos)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == dsl.compile_file(str(topos / "enrich.topo")).tradecraft


def test_compile_output_file_is_the_same_json_and_check_accepts_it(topos: Path) -> None:
    proc = cli("compile", "route.topo", "-o", "route.json", cwd=topos)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    compiled = json.loads((topos / "route.json").read_text())
    assert compiled == dsl.compile_file(str(topos / "route.topo")).tradecraft
    checked = cli("check", "route.json", cwd=topos)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: route.json: topology 'route', 5 elements")


def test_compile_output_into_a_missing_folder_is_no_traceback(topos: Path) -> None:
    """Either the folder is made (as sinks make theirs) or the error names the path."""
    proc = cli("compile", "count.topo", "-o", "new/folder/count.json", cwd=topos)
    target = topos / "new/folder/count.json"
    if proc.returncode == 0:
        assert json.loads(target.read_text())["name"] == "count"
    else:
        assert proc.returncode == 2
        assert "new/folder/count.json" in proc.stderr
        assert proc.stderr.startswith("error: ")


def test_set_overrides_parameters_in_the_compiled_topology(topos: Path) -> None:
    proc = cli(
        "compile",
        "count.topo",
        "--set",
        "src.count=5",
        "-s",
        'total.path="x.json"',
        "--set",
        "src.keys=3",
        cwd=topos,
    )
    assert proc.returncode == 0, proc.stderr
    params = {e["name"]: e["params"] for e in json.loads(proc.stdout)["elements"]}
    # a path parameter resolves against the .topo file's folder
    total = str(topos / "x.json")
    assert params == {"src": {"count": 5, "keys": 3}, "total": {"path": total}}


def test_set_on_run_changes_what_runs(topos: Path, tmp_path: Path) -> None:
    proc = cli(
        "run",
        "count.topo",
        "--set",
        "src.count=321",
        "--display",
        "quiet",
        "--run-dir",
        str(tmp_path / "run"),
        cwd=topos,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((topos / "out/count.json").read_text()) == {"count": 321}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("src.nope=5", "error: Generate has no parameter 'nope'"),
        ("nope.count=5", "error: override names unknown element 'nope'"),
        ('src.count="a"', "error: parameter 'count' of Generate must be int|null, got str 'a'"),
        ("garbage", "error: override 'garbage' is not of the form element.param=value"),
    ],
)
def test_a_bad_override_exits_2_and_names_it(topos: Path, override: str, message: str) -> None:
    proc = cli("compile", "count.topo", "--set", override, cwd=topos)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr
    assert f"--> override: {override}" in proc.stderr
    assert "hint:" in proc.stderr


# ---- run ---------------------------------------------------------------------
def test_run_summary_json_into_a_missing_folder_is_no_traceback(
    topos: Path, tmp_path: Path
) -> None:
    """Either the folder is made or the error names the path; never a traceback."""
    proc = cli(
        "run",
        "count.topo",
        "--display",
        "quiet",
        "--run-dir",
        str(tmp_path / "run"),
        "--summary-json",
        "reports/today/summary.json",
        cwd=topos,
    )
    target = topos / "reports/today/summary.json"
    if target.exists():
        assert proc.returncode == 0, proc.stderr
        assert json.loads(target.read_text())["elements"]["total"]["in"] == 100000
    else:
        assert proc.returncode == 2
        assert "reports/today/summary.json" in proc.stderr


def test_run_with_an_unknown_codec_exits_2_with_a_hint(topos: Path, tmp_path: Path) -> None:
    proc = cli(
        "run", "count.topo", "--codec", "jsonn", "--run-dir", str(tmp_path / "run"), cwd=topos
    )
    assert proc.returncode == 2
    assert "error: unknown codec 'jsonn'" in proc.stderr
    assert "hint: choose one of orjson, ujson, msgpack" in proc.stderr


def test_codec_and_fusion_names_are_taken_in_any_case(topos: Path, tmp_path: Path) -> None:
    proc = cli(
        "run", "count.topo", "--codec", "ORJSON", "--fusion", "MAX", "--display", "Quiet",
        "--run-dir", str(tmp_path / "run"), cwd=topos,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "count: 100000" in proc.stdout + proc.stderr
    proc = cli("run", "count.topo", "--codec", "json", "--run-dir", str(tmp_path / "r2"), cwd=topos)
    assert proc.returncode == 2
    assert "orjson and ujson both write JSON" in proc.stderr


def test_run_exits_1_and_names_the_element_that_failed_to_start(tmp_path: Path) -> None:
    (tmp_path / "failstart.topo").write_text("""topology failstart {
    element src = JsonLinesSource(path="data/nope.jsonl")
    element out = Count()
    src -> out
}
""")
    run_dir = (tmp_path / "run").resolve()
    proc = cli(
        "run",
        "failstart.topo",
        "--display",
        "plain",
        "--run-dir",
        str(run_dir),
        "--summary-json",
        "summary.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert (
        "error: element 'src' could not start: ParameterError: JsonLinesSource: file "
        f"'{tmp_path / 'data' / 'nope.jsonl'}' does not exist"
    ) in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit_code"] == 1
    assert len(summary["problems"]) == 1
    assert summary["problems"][0].startswith("element 'src' could not start")
    assert_no_element_processes(run_dir)


# ---- classes and describe ----------------------------------------------------
def test_classes_lists_every_registered_class_with_its_ports(tmp_path: Path) -> None:
    proc = cli("classes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name in registered():
        cls = resolve(name)
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        assert f"{name:16} {summary}" in lines, name
        ports = ", ".join(f"{p.name}:{p.direction}/{p.kind}" for p in cls.ports)
        assert f"{'':16} ports: {ports}" in lines, name
    # then a blank line, a heading and one line per built-in group
    assert len(lines) == 2 * len(registered()) + 2 + 4


def test_describe_shows_documentation_ports_and_parameters(tmp_path: Path) -> None:
    proc = cli("describe", "Filter", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Filter  (datablox.elements.transforms:Filter)\n")
    assert "Pass on the records for which an expression is true." in out
    assert "ports:\n  in push (->) in\n  out push (->) out\n" in out
    assert "parameters:\n  where: str (required) — expression; records where it is true pass" in out


def test_describe_shows_defaults_and_query_ports(tmp_path: Path) -> None:
    proc = cli("describe", "Lookup", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '  out query (?>) ask — asks {"key": k}; expects {"value": ...}' in proc.stdout
    assert "  timeout: number (default 5.0) — seconds to wait for a batch's answers" in proc.stdout


def test_describe_an_unknown_class_exits_2_with_a_hint(tmp_path: Path) -> None:
    proc = cli("describe", "Filtr", cwd=tmp_path)
    assert proc.returncode == 2
    assert "error: unknown element class 'Filtr'" in proc.stderr
    assert "hint: did you mean 'Filter'?" in proc.stderr


# ---- help --------------------------------------------------------------------
def _flat(text: str) -> str:
    """Help text without box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _subcommands(app: typer.Typer) -> dict[str, Any]:
    """The app's commands as (typer's own) click command objects."""
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


HELP_CASES = [("datablox-master", name) for name in sorted(_subcommands(master_app))] + [
    ("datablox-caretaker", name) for name in sorted(_subcommands(caretaker_app))
]


@pytest.mark.parametrize(("script", "command"), HELP_CASES)
def test_help_explains_every_option(tmp_path: Path, script: str, command: str) -> None:
    app = master_app if script == "datablox-master" else caretaker_app
    cmd = _subcommands(app)[command]
    proc = cli(command, "--help", cwd=tmp_path, script=script)
    assert proc.returncode == 0, proc.stderr
    shown = _flat(proc.stdout)
    assert cmd.help and _flat(cmd.help)[:60] in shown
    problems = []
    for param in cmd.params:
        if param.name == "help":
            continue
        names = param.opts + param.secondary_opts if param.param_type_name == "option" else []
        problems += [f"{opt} is not shown" for opt in names if opt not in proc.stdout]
        if not param.help:
            problems.append(f"'{param.name}' has no help text")
        elif _flat(param.help) not in shown:
            problems.append(
                f"the help of '{param.name}' is not shown as written: {_flat(param.help)!r}"
            )
    assert not problems, f"{script} {command} --help:\n" + "\n".join(problems)


@pytest.mark.parametrize("script", ["datablox-master", "datablox-caretaker"])
def test_top_level_help_lists_every_command(tmp_path: Path, script: str) -> None:
    app = master_app if script == "datablox-master" else caretaker_app
    proc = cli("--help", cwd=tmp_path, script=script)
    assert proc.returncode == 0, proc.stderr
    for name in _subcommands(app):
        assert re.search(rf"^\W*{name}\s", proc.stdout, re.M), (
            f"{name} missing from {script} --help"
        )


def test_caretaker_version_prints_the_package_version(tmp_path: Path) -> None:
    import datablox

    proc = cli("version", cwd=tmp_path, script="datablox-caretaker")
    assert proc.returncode == 0
    assert proc.stdout.strip() == datablox.__version__
