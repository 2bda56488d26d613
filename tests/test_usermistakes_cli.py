"""A new user's mistakes, through `datablox-master`: an `error:` line, never a traceback."""

# ruff: noqa: E501  (expected output is compared verbatim, long lines included)

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datablox.master.shardreport import not_done
from tests.test_cli import cli

HELLO = """topology hello {
    element src = Generate(count=50)
    element keep = Filter(where="value > 0.5")
    element total = Count(path="out/count.json")
    src -> keep -> total
}
"""


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    (tmp_path / "hello.topo").write_text(HELLO)
    return tmp_path


def test_a_huge_integer_fails_check_compile_and_run(hello: Path) -> None:
    (hello / "big.topo").write_text(
        HELLO.replace("count=50", "count=50, seed=99999999999999999999999")
    )
    for command in ("check", "compile", "run"):
        proc = cli(command, "big.topo", cwd=hello)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(
            "error: integer 99999999999999999999999 cannot be carried: it is outside the signed "
            "64-bit range\n --> big.topo:2:43\n"
        )
    assert not (hello / ".datablox").exists()


def test_an_infinite_set_value_is_positioned(hello: Path) -> None:
    proc = cli("compile", "hello.topo", "--set", "src.rate=1e999", cwd=hello)
    assert proc.returncode == 2
    assert (
        "error: number 1e999 (= inf) cannot be carried: it is not finite\n --> override:1:10\n"
        in proc.stderr
    )
    assert "1 | src.rate=1e999\n  |          ^^^^^" in proc.stderr


def test_a_deep_set_value_is_positioned(hello: Path) -> None:
    proc = cli("check", "hello.topo", "--set", "src.keys=" + "[" * 700 + "]" * 700, cwd=hello)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: value nested more than 100 levels deep\n --> override:1:110\n"
    )


def test_compile_to_an_unwritable_path_is_an_error_line(hello: Path) -> None:
    (hello / "afile").write_text("")
    proc = cli("compile", "hello.topo", "-o", "afile/x.json", cwd=hello)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: cannot write the tradecraft JSON to 'afile/x.json': "
        "a part of the path is a file, not a folder\n"
    )


@pytest.mark.parametrize("target", ["afile/summary.json", "afolder"])
def test_an_unwritable_summary_path_fails_before_the_run(hello: Path, target: str) -> None:
    (hello / "afile").write_text("")
    (hello / "afolder").mkdir()
    proc = cli("run", "hello.topo", "--display", "quiet", "--summary-json", target, cwd=hello)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: cannot write the summary to '{target}': ")
    assert not (hello / "out" / "count.json").exists()  # nothing ran
    assert not (hello / ".datablox").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("import sys\nsys.exit(3)\n", "module 'm' called sys.exit(3) while being imported"),
        (
            "import os\nos._exit(0)\n",
            "module 'm' ended the process (os._exit(0)) while being imported",
        ),
        ("raise KeyboardInterrupt\n", "module 'm' raised KeyboardInterrupt while being imported"),
    ],
)
def test_check_is_never_ended_by_a_user_module(hello: Path, body: str, message: str) -> None:
    (hello / "m.py").write_text(body)
    (hello / "uses_m.topo").write_text(HELLO.replace("Count(", "m:Class(").replace("total", "t"))
    proc = cli("check", "uses_m.topo", cwd=hello)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {message}\n --> uses_m.topo:4:17\n"), proc.stderr


def test_long_source_lines_are_not_wrapped(hello: Path) -> None:
    padding = " " * 160
    (hello / "long.topo").write_text(HELLO.replace("count=50)", f"count=50,{padding}nope=1)"))
    proc = cli("check", "long.topo", cwd=hello)
    assert proc.returncode == 2
    line = f"2 |     element src = Generate(count=50,{padding}nope=1)"
    assert line in proc.stderr.splitlines()
    caret = proc.stderr.splitlines()[proc.stderr.splitlines().index(line) + 1]
    assert caret.index("^") == line.index("nope")


def test_a_bad_filter_expression_in_set_fails_before_anything_runs(hello: Path) -> None:
    proc = cli("run", "hello.topo", "--set", "keep.where=value >", "--display", "quiet", cwd=hello)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: parameter 'where' of Filter: syntax error at column 8: the expression ends too early\n"
        " --> override: keep.where=value >\n"
    )
    assert not (hello / ".datablox").exists()


def test_describe_finds_a_module_in_the_current_folder(hello: Path) -> None:
    (hello / "shout.py").write_text(
        "from datablox import Element\nfrom datablox.ports import push_in\n\n"
        "class Shout(Element):\n    '''Shouts.'''\n    ports = (push_in('in'),)\n\n"
        "    def on_record(self, port, record):\n        pass\n"
    )
    proc = cli("describe", "shout:Shout", cwd=hello)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("shout:Shout  (shout:Shout)\n\nShouts.")


def test_a_bom_topo_checks(hello: Path) -> None:
    (hello / "bom.topo").write_bytes(b"\xef\xbb\xbf" + HELLO.encode())
    proc = cli("check", "bom.topo", cwd=hello)
    assert proc.returncode == 0, proc.stderr
    compiled = cli("compile", "bom.topo", cwd=hello)
    assert json.loads(compiled.stdout)["name"] == "hello"


def test_describe_and_classes_know_the_built_in_groups(tmp_path: Path) -> None:
    proc = cli("describe", "Join", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Join  (built-in group, <datablox>/join.topo)\n\n# The dataset")
    assert "group Join(key, dataset_key, path," in proc.stdout
    assert "expose out = postjoin.out\n}" in proc.stdout
    listed = cli("classes", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for line in (
        "Join             ports: in, out",
        "JoinFrom         ports: in, dataset, out",
        "JoinQuery        ports: in, fetch, out",
        "WindowJoin       ports: left, right, out, late",
    ):
        assert line in listed.stdout


KEYED = """topology keyed {
    element src = Generate(count=3000, keys=50)
    element counts = KeyCount(key="key") shard(min=1, max=3, key="key")
    element out = Count()
    src -> counts -> out
}
"""


@pytest.mark.parametrize(
    ("action", "says"),
    [
        (
            "counts:members=9@10",
            "error: --reshard counts:members=9@10: shard 'counts' has from 1 to 3 members (its shard(min=…, max=…)), so not 9",
        ),
        ("counts:members=0@10", "so not 0"),
        ("counts:move=0@10", "error: --reshard counts:move=0@10: a move takes 1 to 256 partitions"),
        ("counts:move=300@10", "a move takes 1 to 256 partitions"),
        ("counts:members@10", "error: --reshard: cannot read 'counts:members@10'"),
        (
            "counts:members=2@-1",
            "error: --reshard counts:members=2@-1: RECORDS must be 0 or more, got -1",
        ),
    ],
)
def test_a_forced_change_that_cannot_be_made_fails_before_the_run(
    tmp_path: Path, action: str, says: str
) -> None:
    """Before: members=9 was clamped to the shard's max and members=0 raised to 1, silently."""
    (tmp_path / "keyed.topo").write_text(KEYED)
    proc = cli("run", "keyed.topo", "--reshard", action, "--run-dir", "rd", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # as every other option of run
    assert says in proc.stderr, proc.stderr
    assert not (tmp_path / "rd").exists()


def test_a_forced_change_the_run_ends_before_is_named_in_the_summary(tmp_path: Path) -> None:
    (tmp_path / "keyed.topo").write_text(KEYED)
    proc = cli(
        "run", "keyed.topo", "--reshard", "counts:members=2@5000", "--no-autoscale",
        "--run-dir", "rd", "--display", "plain", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert (
        "warning: --reshard counts:members=2@5000: not done; the shard received 3,000 of the "
        "5,000 records it waited for" in said
    ), said


def test_a_forced_change_whose_count_came_with_the_end_of_the_stream_says_so() -> None:
    """Before: "the shard received 50,000 of the 49,000 records it waited for"."""
    assert not_done("double:members=4@49000", 50_000, 49_000) == (
        "--reshard double:members=4@49000: not done; the shard had its 49,000 records only "
        "as its stream ended (50,000 in all), before the next round of changes"
    )
    assert "received 3,000 of the 5,000 records" in not_done("c:members=2@5000", 3000, 5000)
