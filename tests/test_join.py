"""The JOIN family: a stream enriched from a dataset while the JOIN splits, shrinks, loses a
member to kill -9 and swaps dataset versions — outputs compared as multisets with the
join computed in plain Python over the same inputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from datablox.dsl.compiler import compile_source
from datablox.errors import TopologyError
from tests.conftest import Cluster
from tests.test_shards import compiled, read

COUNT = 30_000
KEYS = 400


def dataset(version: int = 1) -> list[dict[str, Any]]:
    """Rows for keys k0..k299 only (k300.. match nothing); every 7th key has two rows
    (one-to-many); rows differ between versions."""
    rows = []
    for i in range(300):
        rows.append({"code": f"k{i}", "label": f"v{version}-{i}"})
        if i % 7 == 0:
            rows.append({"code": f"k{i}", "label": f"v{version}-{i}-bis"})
    return rows


def write_dataset(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")


def expected(
    rows: list[dict[str, Any]], kind: str, version: int = 1, count: int = COUNT
) -> Counter[tuple[int, str, int]]:
    """The join in plain Python: (id, the match as JSON, version) per output record of
    Generate(count, keys=KEYS) (record i has key k{i % KEYS}) joined on key == code."""
    by_code: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_code.setdefault(r["code"], []).append(r)
    out: Counter[tuple[int, str, int]] = Counter()
    for i in range(count):
        matches = by_code.get(f"k{i % KEYS}", [])
        if matches:
            for m in matches:
                out[(i, orjson.dumps(m, option=orjson.OPT_SORT_KEYS).decode(), version)] += 1
        elif kind == "left":
            out[(i, "null", version)] += 1
    return out


def got(path: Path) -> Counter[tuple[int, str, int]]:
    return Counter(
        (
            r["id"],
            orjson.dumps(r["match"], option=orjson.OPT_SORT_KEYS).decode(),
            r["dataset_version"],
        )
        for r in read(path)
    )


def join_topology(tmp_path: Path, kind: str = "inner", member: str = "", watch: float = 0) -> str:
    """Generate → Join(file) → file. ``member``: write the family out by hand with this
    JOIN member class (the group always uses JoinMember)."""
    data, out = tmp_path / "data.jsonl", tmp_path / "out.jsonl"
    if not member:
        return f"""
        topology joined {{
            element src = Generate(count={COUNT}, rate=4000, keys={KEYS})
            element geo = Join(key="key", dataset_key="code", path="{data}", kind="{kind}",
                               watch={watch})
            element out = JsonLinesSink(path="{out}")
            src -> geo -> out
        }}
        """
    return f"""
    topology joined {{
        element src        = Generate(count={COUNT}, rate=4000, keys={KEYS})
        element prejoin    = PreJoin(key="key")
        element enrichment = Enrichment(path="{data}", key="key", dataset_key="code")
        element join       = {member}(key="key", kind="{kind}") shard(min=1, max=4, key="key")
        element postjoin   = PostJoin()
        element out        = JsonLinesSink(path="{out}")
        src -> prejoin -> join.in
        enrichment -> join.dataset
        join -> postjoin -> out
        enrichment.stream ?> prejoin.state
    }}
    """


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_splits_then_a_scale_in_keep_the_join_exact(
    cluster: Cluster, tmp_path: Path, kind: str
) -> None:
    """Split 1 → 2 → 3 → 4 members (repeated splits), then back to 2, mid-stream."""
    write_dataset(tmp_path / "data.jsonl", dataset())
    result = cluster.run(
        compiled(tmp_path, join_topology(tmp_path, kind)),
        autoscale=False,
        fusion="off",
        reshard=[
            "geo/join:members=2@4000",
            "geo/join:members=3@9000",
            "geo/join:members=4@14000",
            "geo/join:members=2@20000",
        ],
    )
    assert result.exit_code == 0, result.problems
    shard = result.summary()["shards"]["geo/join"]
    assert len(shard["members"]) == 2 and sum(shard["partitions"].values()) == 256
    assert len(shard["moves"]) > 0
    assert got(tmp_path / "out.jsonl") == expected(dataset(), kind)


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_a_split_under_congestion_serves_the_queued_records(
    cluster: Cluster, tmp_path: Path, kind: str
) -> None:
    """A slow JOIN member has thousands of records queued when it splits (1 → 2 → 3, then
    back to 2): it hands its partitions over at once and enriches what was queued for
    them from the rows it kept; the join stays exact."""
    write_dataset(tmp_path / "data.jsonl", dataset())
    kept = tmp_path / "kept"
    kept.mkdir()
    text = join_topology(tmp_path, kind, member="join_elements:SlowJoin")
    text = text.replace("rate=4000", "rate=3500").replace(
        f'kind="{kind}")', f'kind="{kind}", ms=0.4, folder="{kept}")'
    )
    result = cluster.run(
        compiled(tmp_path, text),
        autoscale=False,
        fusion="off",
        reshard=["join:members=2@4000", "join:members=3@12000", "join:members=2@20000"],
    )
    assert result.exit_code == 0, result.problems
    shard = result.summary()["shards"]["join"]
    assert len(shard["members"]) == 2
    # each change moved its partitions in one batch
    assert [m["partitions"] for m in shard["moves"]][:1] == [128]
    assert sum(int(f.read_text()) for f in kept.iterdir()) > 0
    assert got(tmp_path / "out.jsonl") == expected(dataset(), kind)


def test_a_join_member_killed_mid_split(cluster: Cluster, tmp_path: Path) -> None:
    write_dataset(tmp_path / "data.jsonl", dataset())
    flag = tmp_path / "died"
    text = join_topology(tmp_path, "left", member="join_elements:DyingJoin").replace(
        'kind="left")', f'kind="left", flag="{flag}")'
    )
    result = cluster.run(
        compiled(tmp_path, text),
        autoscale=False,
        fusion="off",
        reshard=["join:members=2@6000"],
        max_restarts=5,
        snapshot_every=0.3,
    )
    assert result.exit_code == 0, result.problems
    assert flag.exists()  # the member was killed in the middle of handing over partitions
    assert result.summary()["checkpoints"]["restores"] >= 1
    assert got(tmp_path / "out.jsonl") == expected(dataset(), "left")


def test_a_new_dataset_version_switches_each_key_at_one_point(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The file changes mid-stream (written by an element of the stream when it sees
    record 10,000); ENRICHMENT, watching it, sends version 2. Every record is enriched
    from exactly one version, with exactly that version's rows; per key, once a record
    has version 2 no later one has version 1."""
    data = tmp_path / "data.jsonl"
    write_dataset(data, dataset(1))
    write_dataset(tmp_path / "next.jsonl", dataset(2))
    out = tmp_path / "out.jsonl"
    text = f"""
    topology refreshed {{
        element src  = Generate(count={COUNT}, rate=4000, keys={KEYS})
        element flip = join_elements:ReplaceAt(at=10000, source="{tmp_path / "next.jsonl"}",
                                               target="{data}")
        element geo  = Join(key="key", dataset_key="code", path="{data}", kind="left",
                            watch=0.1)
        element out  = JsonLinesSink(path="{out}")
        src -> flip -> geo -> out
    }}
    """
    result = cluster.run(
        compiled(tmp_path, text),
        autoscale=False,
        fusion="off",
        reshard=["geo/join:members=2@5000"],
    )
    assert result.exit_code == 0, result.problems
    rows = read(out)
    versions = Counter(r["dataset_version"] for r in rows)
    assert set(versions) == {1, 2} and versions[2] > 0
    per_id: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        per_id.setdefault(r["id"], []).append(r)
    assert sorted(per_id) == list(range(COUNT))  # every record, none twice (below)
    want = {1: expected(dataset(1), "left", 1), 2: expected(dataset(2), "left", 2)}
    last_version: dict[str, int] = {}
    for i in sorted(per_id):
        outs = per_id[i]
        tags = {r["dataset_version"] for r in outs}
        assert len(tags) == 1, f"record {i} enriched from versions {tags}"
        v = tags.pop()
        mine = Counter(
            (r["id"], orjson.dumps(r["match"], option=orjson.OPT_SORT_KEYS).decode(), v)
            for r in outs
        )
        assert mine == Counter({k: n for k, n in want[v].items() if k[0] == i})
        key = outs[0]["key"]
        assert v >= last_version.get(key, 1), f"key {key} went back to version {v}"
        last_version[key] = v


def test_a_watched_dataset_that_goes_away_keeps_its_version_until_it_is_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Before: a watched file deleted mid-run failed the run. Now version 1 stays while
    the file is gone (from record 6,000), and the file put back at record 18,000 is
    version 2; each record is enriched from exactly one of them."""
    data = tmp_path / "data.jsonl"
    write_dataset(data, dataset(1))
    write_dataset(tmp_path / "next.jsonl", dataset(2))
    out = tmp_path / "out.jsonl"
    text = f"""
    topology gone {{
        element src  = Generate(count={COUNT}, rate=6000, keys={KEYS})
        element rm   = join_elements:RemoveAt(at=6000, target="{data}", back=18000,
                                              source="{tmp_path / "next.jsonl"}")
        element geo  = Join(key="key", dataset_key="code", path="{data}", kind="left",
                            watch=0.05)
        element out  = JsonLinesSink(path="{out}")
        src -> rm -> geo -> out
    }}
    """
    result = cluster.run(compiled(tmp_path, text), autoscale=False, fusion="off")
    assert result.exit_code == 0, result.problems
    rows = got(out)
    version_of = {i: v for (i, _, v) in rows}
    assert sorted(version_of) == list(range(COUNT))
    assert set(version_of.values()) == {1, 2}
    want = expected(dataset(1), "left", 1) + expected(dataset(2), "left", 2)
    assert rows == Counter({k: n for k, n in want.items() if version_of[k[0]] == k[2]})
    assert all(version_of[i] == 1 for i in range(6000)), "version 1 until the file is gone"


def test_a_dataset_pushed_by_another_element(cluster: Cluster, tmp_path: Path) -> None:
    write_dataset(tmp_path / "rows.jsonl", dataset())
    out = tmp_path / "out.jsonl"
    text = f"""
    topology pushed {{
        element src  = Generate(count={COUNT}, rate=20000, keys={KEYS})
        element rows = JsonLinesSource(path="{tmp_path / "rows.jsonl"}")
        element geo  = JoinFrom(key="key", dataset_key="code")
        element out  = JsonLinesSink(path="{out}")
        src -> geo.in
        rows -> geo.dataset
        geo.out -> out
    }}
    """
    result = cluster.run(compiled(tmp_path, text), autoscale=False, fusion="off")
    assert result.exit_code == 0, result.problems
    assert got(out) == expected(dataset(), "inner")


def test_a_dataset_answered_by_a_query(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    text = f"""
    topology asked {{
        element src  = Generate(count=5000, keys={KEYS})
        element table = join_elements:Table()
        element geo  = JoinQuery(key="key", dataset_key="code", many="list", kind="left")
        element out  = JsonLinesSink(path="{out}")
        src -> geo -> out
        geo.fetch ?> table.rows
    }}
    """
    result = cluster.run(compiled(tmp_path, text), autoscale=False, fusion="off")
    assert result.exit_code == 0, result.problems
    by_code: dict[str, list[dict[str, Any]]] = {}
    for r in dataset():
        by_code.setdefault(r["code"], []).append(r)
    rows = read(out)
    assert sorted(r["id"] for r in rows) == list(range(5000))
    for r in rows:
        assert r["match"] == by_code.get(r["key"], [])


def test_the_checker_verifies_the_join_key_against_the_stream_fields(tmp_path: Path) -> None:
    text = """topology wrong {
    element src = Generate(count=10)
    element geo = Join(key="country", dataset_key="code", path="data.jsonl")
    element out = JsonLinesSink(path="out.jsonl")
    src -> geo -> out
}
"""
    (tmp_path / "data.jsonl").write_text('{"code": "x"}\n')
    path = tmp_path / "t.topo"
    path.write_text(text)
    with pytest.raises(TopologyError) as caught:
        compile_source(text, str(path))
    message = str(caught.value)
    assert "record field 'country'" in message and "t.topo:5:" in message


def window_reference(
    count: int, late_every: int, window: float, lateness: float
) -> tuple[Counter[tuple[int, int]], Counter[int]]:
    """The windowed join in plain Python: per side, in emission order, a record more than
    ``lateness`` behind the latest time seen in its partition on its side is late; the
    other records pair when (src, dst, mid) are equal and times differ by ≤ ``window``.
    Returns the pairs (left mid, right mid) and the late records' mids (right side)."""
    from datablox.partition import partition_of
    from tests.join_elements import events

    kept: list[list[dict[str, Any]]] = []
    late: Counter[int] = Counter()
    for side, names, tfield in (
        ("left", ("src", "dst", "mid"), "ts"),
        ("right", ("from", "to", "mid"), "at"),
    ):
        seen: dict[int, float] = {}
        ok = []
        for r in events(side, count, late_every):
            p = partition_of(tuple(r[n] for n in names))
            if p in seen and r[tfield] < seen[p] - lateness:
                late[r["mid"]] += 1
                continue
            seen[p] = max(seen.get(p, r[tfield]), r[tfield])
            ok.append(r)
        kept.append(ok)
    rights: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in kept[1]:
        rights.setdefault((r["from"], r["to"], r["mid"]), []).append(r)
    pairs: Counter[tuple[int, int]] = Counter()
    for left in kept[0]:
        for r in rights.get((left["src"], left["dst"], left["mid"]), []):
            if abs(r["at"] - left["ts"]) <= window:
                pairs[(left["mid"], r["mid"])] += 1
    return pairs, late


@pytest.mark.parametrize("reshard", [[], ["rr/join:members=2@3000", "rr/join:members=3@9000"]])
def test_a_windowed_join_of_out_of_order_streams(
    cluster: Cluster, tmp_path: Path, reshard: list[str]
) -> None:
    """Requests joined with responses on src + dst + message id (named differently on the
    two sides) within 0.2 s of event time, out of order, with late responses; the JOIN
    splits mid-stream in the second case."""
    count, late_every = 8000, 97
    out, late = tmp_path / "out.jsonl", tmp_path / "late.jsonl"
    text = f"""
    topology rr {{
        element requests  = join_elements:Events(side="left", count={count}, rate=4000)
        element responses = join_elements:Events(side="right", count={count},
                                                 late_every={late_every}, rate=4000)
        element rr   = WindowJoin(key=["src", "dst", "mid"], right_key=["from", "to", "mid"],
                                  time="ts", right_time="at", window=0.2, into="response")
        element out  = JsonLinesSink(path="{out}")
        element lout = JsonLinesSink(path="{late}")
        requests -> rr.left
        responses -> rr.right
        rr.out -> out
        rr.late -> lout
    }}
    """
    result = cluster.run(compiled(tmp_path, text), autoscale=False, fusion="off", reshard=reshard)
    assert result.exit_code == 0, result.problems
    pairs, late_mids = window_reference(count, late_every, 0.2, 0.2)
    rows = read(out)
    assert Counter((r["mid"], r["response"]["mid"]) for r in rows) == pairs
    assert all(r["src"] == r["response"]["from"] for r in rows)
    assert Counter(r["mid"] for r in read(late)) == late_mids
    assert sum(late_mids.values()) > 0 and len(pairs) > count // 2


def test_a_member_serves_queued_records_of_handed_over_partitions_until_released() -> None:
    """In-process: JoinMember's copy of exported partitions (an early export), its
    version while a newer one completes, a move back, and releases in export order."""
    from datablox.elements.join import JoinMember, dataset_record, version_end
    from datablox.partition import partition_of
    from datablox.testing import ElementHarness

    member = ElementHarness(JoinMember, {"key": "key", "kind": "left"})

    def load(version: int, without: frozenset[int] = frozenset()) -> None:
        """Version ``version``'s rows, but those of ``without`` (routed elsewhere)."""
        rows = [dataset_record(r, version, ["key"], ["code"]) for r in dataset(version)]
        rows = [r for r in rows if partition_of(r["key"]) not in without]
        member.push([*rows, version_end(version, len(rows))], port="dataset")

    def enrich(key: str) -> list[tuple[Any, int]]:
        return [(r["match"], r["dataset_version"]) for r in member.push([{"key": key}])]

    load(1)
    p = frozenset({partition_of("k0")})
    state = member.element.export_partitions(p, partition_of)
    assert state["partitions"] == sorted(p)
    # a queued record of k0 is still enriched, from version 1's rows
    assert enrich("k0") == [(r, 1) for r in dataset(1) if r["code"] == "k0"]
    load(2, without=p)  # version 2 completes here meanwhile: k0's queued records keep 1
    assert enrich("k0") == [(r, 1) for r in dataset(1) if r["code"] == "k0"]
    assert {v for _, v in enrich("k1")} == {2}
    member.element.release_partitions(p)
    assert enrich("k0") == [(None, 2)]  # not held here any more
    # handed over again, then back before the first release: the copy is not used
    member.element.export_partitions(p, partition_of)
    member.element.export_partitions(p, partition_of)  # (nothing left: a second move)
    assert len(member.element.kept) == 2
    member.element.release_partitions(p)  # releases the oldest copy only
    assert len(member.element.kept) == 1
    back = {"current": 2, "gens": {2: {}}, "waiting": [], "partitions": sorted(p)}
    member.element.import_partitions(back)
    assert member.element.kept == []
