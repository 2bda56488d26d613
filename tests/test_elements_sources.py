"""Generate: deterministic synthetic records, counts, pacing and bad parameters; file
sources that lost data silently (repeated CSV columns, JSON integers beyond 64 bits)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from datablox.elements._support import _CHUNK
from datablox.elements.sources import Pacer
from datablox.errors import ParameterError
from datablox.testing import ElementHarness, chain
from tests.conftest import Cluster, element_processes


def test_record_shape_and_keys() -> None:
    h = ElementHarness("Generate", {"count": 12, "keys": 5})
    out = h.run_source()
    assert [r["id"] for r in out] == list(range(12))
    assert [r["ts"] for r in out] == list(range(12))
    assert [r["key"] for r in out[:6]] == ["k0", "k1", "k2", "k3", "k4", "k0"]
    for r in out:
        assert set(r) == {"id", "key", "value", "ts"}
        assert 0.0 <= r["value"] < 1.0
        assert round(r["value"], 6) == r["value"]
    assert h.element.total == 12


def test_same_seed_same_values_other_seed_differs() -> None:
    a = ElementHarness("Generate", {"count": 50, "seed": 7}).run_source()
    b = ElementHarness("Generate", {"count": 50, "seed": 7}).run_source()
    c = ElementHarness("Generate", {"count": 50, "seed": 8}).run_source()
    assert a == b
    assert [r["value"] for r in a] != [r["value"] for r in c]


def test_default_count_and_zero() -> None:
    assert len(ElementHarness("Generate").run_source()) == 1000
    assert ElementHarness("Generate", {"count": 0}).run_source() == []


def test_endless_when_count_is_null() -> None:
    h = ElementHarness("Generate", {"count": None})
    assert h.element.total is None
    assert len(h.run_source(limit=2500)) == 2500


def test_stamp_adds_monotonic_emit_time() -> None:
    before = time.monotonic()
    out = ElementHarness("Generate", {"count": 5, "stamp": True}).run_source()
    after = time.monotonic()
    stamps = [r["t_emit"] for r in out]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after


def test_rate_paces_with_wait() -> None:
    h = ElementHarness("Generate", {"count": 40, "rate": 1000})
    waits: list[float] = []
    # The harness's wait returns at once; record what the element asked for.
    h.ctx._wait = waits.append
    assert len(h.run_source()) == 40
    assert waits, "a paced source must wait between records"
    assert all(0 < w <= 0.04 for w in waits)


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"count": -1}, "'count' of Generate must be at least 0, got -1"),
        ({"rate": 0}, "'rate' of Generate must be more than 0, got 0"),
        ({"keys": 0}, "'keys' of Generate must be at least 1, got 0"),
    ],
)
def test_bad_parameters(params: dict[str, int], text: str) -> None:
    with pytest.raises(ParameterError, match=text):
        ElementHarness("Generate", params)


def test_wrong_parameter_type_is_caught_by_validation() -> None:
    with pytest.raises(
        ParameterError, match=re.escape("parameter 'count' of Generate must be int|null")
    ):
        ElementHarness("Generate", {"count": "many"})


def test_a_paced_source_wakes_once_per_window_however_long_a_list_takes() -> None:
    """At 448,592 records/s, with every record taking 1 µs to build, a second of
    pacing has at most one wake per 2 ms window, lists of a window's worth, and the
    rate holds. A window that moved with the clock would hand out the few records
    that fell due while the last list was built, and never wait (a busy loop)."""
    rate, window = 448_592.0, 0.002
    pacer = Pacer(rate, start=0.0, window=window)
    now, emitted, wakes, lists = 0.0, 0, 0, []
    while now < 1.0:
        wait, due = pacer.step(now, emitted)
        if wait > 0:
            assert due == 0
            now += wait
            wakes += 1
            continue
        n = min(1024, due)
        lists.append(n)
        emitted += n
        now += n * 1e-6
    assert wakes <= 1.0 / window + 1
    assert sum(lists) / len(lists) >= 0.8 * rate * window
    assert rate * 1.0 <= emitted <= rate * (1.0 + window) + 1024


def test_a_pacer_waits_for_the_next_record_and_catches_up_after_a_stall() -> None:
    slow = Pacer(2.0, start=10.0)
    assert slow.step(10.0, 0) == (0.0, 1)
    wait, due = slow.step(10.001, 1)
    assert due == 0 and wait == pytest.approx(0.499)
    assert slow.step(10.5, 1) == (0.0, 1)
    fast = Pacer(1000.0, start=0.0)
    assert fast.step(0.0, 0) == (0.0, 3)  # records 0, 1 and 2 fall in the 2 ms window
    # stalled for 50 ms: everything due by then, and the new window's, at once
    assert fast.step(0.05, 3) == (0.0, 50)


def test_a_paced_generate_sleeps_between_lists(cluster: Cluster, tmp_path: Path) -> None:
    """A paced Generate's process sleeps between lists: at 300,000 records/s it used a
    whole core (here: about 17% of one) when its pacing window moved with the clock."""
    run_dir = tmp_path / "run"
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):  # a sampling period, not a wait for a condition
            for proc in element_processes(run_dir):
                try:
                    if "p0-src" in " ".join(proc.cmdline()):
                        times = proc.cpu_times()
                        samples.append((time.monotonic(), times.user + times.system))
                except psutil.Error:
                    pass

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        src = ("src", "Generate", {"count": 600_000, "rate": 300_000})
        tc = chain("paced", [src, ("sink", "Null", {})])
        result = cluster.run(tc, fusion="off", run_dir=run_dir)
    finally:
        done.set()
        sampler.join()
    assert result.exit_code == 0, result.problems
    # from half a second in (start-up imports done) to the last sample
    steady = [s for s in samples if s[0] >= samples[0][0] + 0.5]
    assert len(steady) >= 10, samples
    (t0, cpu0), (t1, cpu1) = steady[0], steady[-1]
    share = (cpu1 - cpu0) / (t1 - t0)
    assert share < 0.5, f"the source used {share:.0%} of a core"


def test_a_slowly_paced_generate_does_not_hold_up_checkpoints(cluster: Cluster) -> None:
    """Two records 4 s apart, a checkpoint asked for every 0.5 s: each completes within a
    second. When Generate waited for its next record without handing control back, the
    checkpoint it was asked for waited for that record (one completed, after 3 s)."""
    src = ("src", "Generate", {"count": 2, "rate": 0.25})
    result = cluster.run(chain("slow", [src, ("sink", "Count", {})]), snapshot_every=0.5)
    assert result.exit_code == 0, result.problems
    checkpoints = result.summary()["checkpoints"]
    assert checkpoints["completed"] >= 4, checkpoints
    assert checkpoints["median_seconds"] < 1.0, checkpoints


# ---- file sources that lost data silently ---------------------------------------
def _lines(path: Path) -> list[Any]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def test_a_csv_header_that_repeats_a_column_is_a_start_error(
    cluster: Cluster, tmp_path: Path
) -> None:
    """``a,b,a`` gave ``{"a": "3", "b": "2"}``: the first a's value was lost, unsaid."""
    data = tmp_path / "dup.csv"
    data.write_bytes(b"\xef\xbb\xbfa, b,a,c,b\n1,2,3,4,5\n")
    out = tmp_path / "out.jsonl"
    src = ("src", "CsvSource", {"path": str(data)})
    result = cluster.run(chain("dup", [src, ("out", "JsonLinesSink", {"path": str(out)})]))
    assert result.exit_code == 1
    [problem] = result.problems
    assert problem.startswith(
        f"element 'src' could not start: ParameterError: CsvSource: the header of {data} "
        "names a column more than once: 'a' (columns 1 and 3), 'b' (columns 2 and 5)\n"
        "  hint: rename the columns in the file, or name them all with columns=[...] (at "
    )
    assert "Traceback" not in problem
    assert not out.exists()


def test_csv_columns_that_repeat_a_name_or_replace_a_repeating_header(tmp_path: Path) -> None:
    data = tmp_path / "dup.csv"
    data.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(ParameterError) as caught:
        ElementHarness("CsvSource", {"path": str(data), "header": False, "columns": ["x", "x"]})
    assert str(caught.value) == (
        "CsvSource: the columns parameter names a column more than once: 'x' (columns 1 and 2)\n"
        "  hint: give each column its own name"
    )
    h = ElementHarness("CsvSource", {"path": str(data), "columns": ["p", "q", "r"]})
    assert h.run_source() == [{"p": "1", "q": "2", "r": "3"}]


def test_a_later_csv_file_whose_header_repeats_a_column_emits_none_of_its_rows(
    tmp_path: Path,
) -> None:
    (tmp_path / "1.csv").write_text("a,b\n1,2\n")
    (tmp_path / "2.csv").write_text("a,a\n3,4\n")
    rows = ElementHarness("CsvSource", {"path": str(tmp_path / "*.csv")}).element.generate()
    assert next(rows) == {"a": "1", "b": "2"}
    with pytest.raises(ParameterError, match=r"2\.csv names a column more than once: 'a'"):
        next(rows)


#: (line, where it holds an integer orjson would read as a float, or None): orjson reads
#: integers from -2**63 to 2**64-1 exactly, any other as a float
WIDE = [
    ('{"a": 123456789012345678901234567890}', "column 7: 123456789012345678901234567890"),
    ('{"a": 18446744073709551615}', None),
    ('{"a": 18446744073709551616}', "column 7: 18446744073709551616"),
    ('{"a": -9223372036854775808}', None),
    ('{"a": -9223372036854775809}', "column 7: -9223372036854775809"),
    ('{"t": 1700000000000000000, "u": -1700000000000000000}', None),
    ('{"s": "123456789012345678901234567890", "k\\"1": "-99999999999999999999"}', None),
    ('{"f": 1.00000000000000000000, "g": 123456789012345678901.5}', None),
    ('{"f": 1e-12345678901234567890, "g": 100000000000000000000e0}', None),
    ('{"é": [1, {"b": -99999999999999999999}]}', "column 17: -99999999999999999999"),
]
HINT = "JSON lines carry integers from -2**63 to 2**64-1: write a bigger one as a string"


def test_json_lines_integers_beyond_64_bits_go_to_dead_letters(
    cluster: Cluster, tmp_path: Path
) -> None:
    """``{"a": 123456789012345678901234567890}`` came out as ``{"a": 1.2345678901234568e+29}``."""
    data = tmp_path / "wide.jsonl"
    body = [f'{{"n": {i}}}' for i in range(5000)]
    lines = [*body[:2500], *(line for line, _ in WIDE), *body[2500:]]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    src = ("src", "JsonLinesSource", {"path": str(data)})
    tc = chain("wide", [src, ("out", "JsonLinesSink", {"path": str(out)})])
    result = cluster.run(tc, run_dir=run_dir)
    assert result.exit_code == 0, result.problems
    good = [line for line, why in WIDE if why is None]
    assert _lines(out) == [orjson.loads(line) for line in [*body[:2500], *good, *body[2500:]]]
    dead = _lines(run_dir / "deadletter" / "src.jsonl")
    assert [(d["file"], d["line"], d["record"], d["error"]) for d in dead] == [
        (str(data), 2501 + i, line, f"integer beyond 64 bits at {why}; {HINT}")
        for i, (line, why) in enumerate(WIDE)
        if why is not None
    ]


def test_json_lines_integers_beyond_64_bits_are_found_across_reads(tmp_path: Path) -> None:
    """A file is read in blocks: a wide integer across two blocks, in a line longer than a
    block, or on a last line without its newline is found all the same."""
    wide = "-99999999999999999999"
    lead = '{"n": 0, "pad": "'
    # the wide integer's digits run across the end of the first block
    first = lead + "x" * (_CHUNK - len(lead) - len('", "w": ') - 10) + '", "w": ' + wide + "}"
    long = '{"pad": "' + "y" * (3 * _CHUNK) + '", "w": ' + wide + "}"
    lines = [first, '{"n": 1}', long, '{"n": 2, "t": 1700000000000000000}', '{"w": ' + wide + "}"]
    path = tmp_path / "blocks.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    h = ElementHarness("JsonLinesSource", {"path": str(path)})
    assert h.run_source() == [{"n": 1}, {"n": 2, "t": 1700000000000000000}]
    assert [(d["line"], d["record"], d["error"]) for d in h.dead_letters] == [
        (
            n,
            lines[n - 1],
            f"integer beyond 64 bits at column {lines[n - 1].index(wide) + 1}: {wide}; {HINT}",
        )
        for n in (1, 3, 5)
    ]
