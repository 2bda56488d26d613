"""Join inputs a user's data really holds: a list or a map where a join value should be,
a CSV dataset with a byte order mark, a non-finite event time. One bad record or row goes
to the dead letters alone; every other record is joined exactly as plain Python joins it,
in every fusion mode and with every codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from test_declarations import master
from test_hostile_runs import run_cli, topo

STREAM = 3000


def write_lines(path: Path, rows: list[Any]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def dead_letters(run_dir: Path) -> list[dict[str, Any]]:
    folder = run_dir / "deadletter"
    return [d for f in sorted(folder.glob("*.jsonl")) for d in read_lines(f)]


def join_run(folder: Path, stream: list[Any], rows: list[Any], dataset: str, *args: str) -> Any:
    write_lines(folder / "stream.jsonl", stream)
    if dataset.endswith(".jsonl"):
        write_lines(folder / dataset, rows)
    topo(
        folder / "t.topo",
        '    element events = JsonLinesSource(path="stream.jsonl")\n'
        f'    element j = Join(key="k", dataset_key="code", path="{dataset}", kind="left")\n'
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        "    events -> j -> out",
    )
    return run_cli(folder, "t.topo", "--run-dir", str(folder / "rd"), *args, timeout=120)


def left_join(stream: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[Any]:
    """The left join in plain Python, as sorted (id, match) pairs."""
    by_code: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_code.setdefault(row["code"], []).append(row)
    out = []
    for r in stream:
        for match in by_code.get(r["k"], [None]):
            out.append((r["id"], orjson.dumps(match, option=orjson.OPT_SORT_KEYS)))
    return sorted(out)


def joined(path: Path) -> list[Any]:
    return sorted(
        (r["id"], orjson.dumps(r["match"], option=orjson.OPT_SORT_KEYS)) for r in read_lines(path)
    )


@pytest.mark.parametrize("fusion", ["off", "max"])
@pytest.mark.parametrize("bad", [["x", 1500], {"nested": "k5"}])
def test_a_stream_record_whose_join_value_is_a_list_or_map_goes_alone_to_dead_letters(
    tmp_path: Path, fusion: str, bad: Any
) -> None:
    """Before: every waiting stream record was lost without a word, and the run exited 0."""
    stream = [{"id": i, "k": bad if i == 1500 else f"k{i % 10}"} for i in range(STREAM)]
    rows = [{"code": f"k{i}", "n": i} for i in range(10)]
    done = join_run(tmp_path, stream, rows, "ds.jsonl", "--fusion", fusion)
    assert done.returncode == 0, done.stderr
    good = [r for r in stream if r["id"] != 1500]
    assert joined(tmp_path / "out.jsonl") == left_join(good, rows)
    dead = dead_letters(tmp_path / "rd")
    kind = type(bad).__name__
    assert [d["record"]["id"] for d in dead] == [1500], dead
    assert dead[0]["error"].endswith(
        f"join field k holds a {kind}; join values are strings, numbers, booleans or null"
    ), dead[0]["error"]


def test_a_dataset_row_whose_join_value_is_a_map_goes_alone_to_dead_letters(
    tmp_path: Path,
) -> None:
    """Before: the whole dataset was thrown away and every stream record dead-lettered."""
    stream = [{"id": i, "k": f"k{i % 10}"} for i in range(STREAM)]
    rows: list[Any] = [{"code": f"k{i}", "n": i} for i in range(10)]
    rows[5] = {"code": {"nested": "k5"}, "n": 5}
    done = join_run(tmp_path, stream, rows, "ds.jsonl")
    assert done.returncode == 0, done.stderr
    assert joined(tmp_path / "out.jsonl") == left_join(stream, rows[:5] + rows[6:])
    dead = dead_letters(tmp_path / "rd")
    assert [d["record"] for d in dead] == [rows[5]], dead
    assert "dataset row's join field code holds a dict" in dead[0]["error"]


def test_a_csv_dataset_with_a_byte_order_mark_joins(tmp_path: Path) -> None:
    """Before: the first column was read as '\\ufeffcode' and nothing matched."""
    (tmp_path / "ds.csv").write_bytes(b"\xef\xbb\xbfcode,name\r\nk0,zero\r\nk1,one\r\n")
    stream = [{"id": i, "k": f"k{i % 3}"} for i in range(30)]
    done = join_run(tmp_path, stream, [], "ds.csv")
    assert done.returncode == 0, done.stderr
    rows = [{"code": "k0", "name": "zero"}, {"code": "k1", "name": "one"}]
    assert joined(tmp_path / "out.jsonl") == left_join(stream, rows)
    assert dead_letters(tmp_path / "rd") == []


POISON = """
def poison(record):
    if record["id"] == 150:
        record["ts"] = float("nan")
    return record
"""


@pytest.mark.parametrize("codec", ["orjson", "ujson", "msgpack"])
def test_a_non_finite_event_time_is_one_dead_letter_with_every_codec(
    tmp_path: Path, codec: str
) -> None:
    """Before: with ujson and msgpack the NaN reached WindowJoin and a whole batch was lost."""
    (tmp_path / "fns.py").write_text(POISON)
    left = [{"id": i, "key": f"k{i % 5}", "ts": i * 0.01} for i in range(300)]
    right = [{"id": i, "key": f"k{i % 5}", "ts": i * 0.01 + 0.001} for i in range(300)]
    write_lines(tmp_path / "left.jsonl", left)
    write_lines(tmp_path / "right.jsonl", right)
    topo(
        tmp_path / "t.topo",
        '    element l = JsonLinesSource(path="left.jsonl")\n'
        '    element r = JsonLinesSource(path="right.jsonl")\n'
        '    element poison = Map(fn="fns:poison")\n'
        '    element w = WindowJoin(key="key", time="ts", window=0.02)\n'
        '    element out = JsonLinesSink(path="out.jsonl")\n'
        '    element late = JsonLinesSink(path="late.jsonl")\n'
        "    l -> poison -> w.left\n    r -> w.right\n    w.out -> out\n    w.late -> late",
    )
    done = run_cli(tmp_path, "t.topo", "--codec", codec, "--run-dir", str(tmp_path / "rd"))
    assert done.returncode == 0, done.stderr
    expected = sorted(
        (a["id"], b["id"])
        for a in left
        for b in right
        if a["id"] != 150 and a["key"] == b["key"] and abs(a["ts"] - b["ts"]) <= 0.02
    )
    got = sorted((r["id"], r["match"]["id"]) for r in read_lines(tmp_path / "out.jsonl"))
    assert got == expected
    assert read_lines(tmp_path / "late.jsonl") == []
    dead = dead_letters(tmp_path / "rd")
    assert [d["record"]["id"] for d in dead] == [150], dead


def check_fails_at(tmp_path: Path, element: str, says: str, column: int) -> str:
    """``check`` of Generate → ``element`` → Count fails saying ``says`` at line 3, ``column``
    (the element's line); its error output."""
    write_lines(tmp_path / "ds.jsonl", [{"code": "k0", "x": 1}])
    wires = "a -> j -> out" if element.startswith("Join") else "a -> j.left\n    j.out -> out"
    topo(
        tmp_path / "t.topo",
        "    element a = Generate(count=10)\n"
        f"    element j = {element}\n"
        "    element out = Count()\n"
        f"    {wires}",
    )
    done = master(tmp_path, "check", "t.topo")
    assert done.returncode == 2, done.stderr
    assert says in done.stderr, done.stderr
    assert f"t.topo:3:{column}" in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("element", "says", "column"),
    [
        (
            'Join(key="key", dataset_key=["code", "x"], path="ds.jsonl")',
            "error: key has 1 field(s) and dataset_key 2; they are compared pairwise",
            45,
        ),
        (
            'WindowJoin(key=["key", "id"], time="ts", window=0.2, right_key="key")',
            "error: key (in WindowJoin: right_key) has 1 field(s) and route_as (in WindowJoin: "
            "key) 2; they are paired field by field",
            32,
        ),
    ],
)
def test_join_fields_that_cannot_pair_fail_check_at_the_users_value(
    tmp_path: Path, element: str, says: str, column: int
) -> None:
    """Before: check said ok and the run failed at start, naming no place in the .topo."""
    check_fails_at(tmp_path, element, says, column)


@pytest.mark.parametrize(
    ("element", "says", "column"),
    [
        (
            'Join(key="key", dataset_key="code", path="ds.jsonl", max=0)',
            "error: shard(min=1, max=0) is not a range",
            74,
        ),
        (
            'Join(key="key", dataset_key="code", path="ds.jsonl", watch=-1)',
            "must be at least 0, got -1",
            76,
        ),
        (
            'WindowJoin(key="key", time="ts", window=0.2, lateness=-1)',
            "must be at least 0, got -1",
            71,
        ),
    ],
)
def test_join_bounds_out_of_range_fail_check_at_the_users_value(
    tmp_path: Path, element: str, says: str, column: int
) -> None:
    """Before: lateness=-1 and watch=-1 passed check; max=0 pointed inside the library."""
    stderr = check_fails_at(tmp_path, element, says, column)
    assert "<datablox>" not in stderr, stderr


def test_check_warns_of_a_missing_dataset_at_the_users_value_and_of_nothing_else(
    tmp_path: Path,
) -> None:
    """Before: a missing dataset passed check without a word, while every Join warned
    about its internal, unconnected fetch port."""
    body = (
        "    element a = Generate(count=10)\n"
        '    element j = Join(key="key", dataset_key="code", path="{path}")\n'
        "    element out = Count()\n"
        "    a -> j -> out"
    )
    write_lines(tmp_path / "ds.jsonl", [{"code": "k0", "x": 1}])
    topo(tmp_path / "t.topo", body.format(path="ds.jsonl"))
    done = master(tmp_path, "check", "t.topo")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    topo(tmp_path / "t.topo", body.format(path="nope.jsonl"))
    done = master(tmp_path, "check", "t.topo")
    assert done.returncode == 0, done.stderr
    assert "warning: element 'j/enrichment' reads its path, but file" in done.stderr
    assert "nope.jsonl' does not exist (yet)" in done.stderr
    assert "t.topo:3:58" in done.stderr, done.stderr
    assert "fetch" not in done.stderr, done.stderr
