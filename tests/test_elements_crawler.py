"""FileCrawler: deterministic order, patterns, hidden files and unreadable folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from datablox.errors import ParameterError
from datablox.testing import ElementHarness


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel, text in {
        "b.csv": "1",
        "a.jsonl": "22",
        "sub/z.csv": "333",
        "sub/deeper/y.jsonl": "4444",
        "sub2/x.txt": "",
        ".hidden.csv": "h",
        ".git/config": "c",
        "noext": "n",
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _paths(params: dict[str, object]) -> list[str]:
    return [r["path"] for r in ElementHarness("FileCrawler", params).run_source()]


def test_walks_sorted_with_relative_paths(tree: Path) -> None:
    out = ElementHarness("FileCrawler", {"root": str(tree)}).run_source()
    assert [r["path"] for r in out] == [
        "a.jsonl",
        "b.csv",
        "noext",
        "sub/deeper/y.jsonl",
        "sub/z.csv",
        "sub2/x.txt",
    ]
    first = out[0]
    assert first["name"] == "a.jsonl"
    assert first["suffix"] == ".jsonl"
    assert first["size"] == 2
    assert first["mtime"] == pytest.approx(os.stat(tree / "a.jsonl").st_mtime)
    assert out[2]["suffix"] == ""


def test_pattern_matches_file_names(tree: Path) -> None:
    assert _paths({"root": str(tree), "pattern": "*.csv"}) == ["b.csv", "sub/z.csv"]


def test_not_recursive(tree: Path) -> None:
    assert _paths({"root": str(tree), "recursive": False}) == ["a.jsonl", "b.csv", "noext"]


def test_hidden(tree: Path) -> None:
    paths = _paths({"root": str(tree), "hidden": True})
    assert ".hidden.csv" in paths and ".git/config" in paths
    assert paths == sorted(paths, key=lambda p: p.split("/"))


def test_deterministic(tree: Path) -> None:
    assert _paths({"root": str(tree)}) == _paths({"root": str(tree)})


def test_directory_symlinks_are_not_followed(tree: Path) -> None:
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    assert "sub/loop/a.jsonl" not in _paths({"root": str(tree)})


def test_missing_root_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"FileCrawler: root '.*nope' does not exist"):
        ElementHarness("FileCrawler", {"root": str(tmp_path / "nope")})
    (tmp_path / "f").write_text("")
    with pytest.raises(ParameterError, match=r"root '.*f' is a file"):
        ElementHarness("FileCrawler", {"root": str(tmp_path / "f")})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folder_is_logged_and_skipped(tree: Path) -> None:
    locked = tree / "sub"
    locked.chmod(0)
    try:
        h = ElementHarness("FileCrawler", {"root": str(tree)})
        assert [r["path"] for r in h.run_source()] == ["a.jsonl", "b.csv", "noext", "sub2/x.txt"]
        assert any("cannot read folder" in line and "skipped" in line for line in h.logs)
    finally:
        locked.chmod(0o755)


def test_folder_that_vanishes_while_crawling_is_logged_and_skipped(tree: Path) -> None:
    # Works as root too: the walk is lazy, so a folder removed after its parent
    # was listed fails to open exactly like an unreadable one.
    h = ElementHarness("FileCrawler", {"root": str(tree)})
    walk = h.element.generate()
    assert next(walk)["path"] == "a.jsonl"
    shutil.rmtree(tree / "sub")
    assert [r["path"] for r in walk if r] == ["b.csv", "noext", "sub2/x.txt"]
    assert any("cannot read folder" in line and "skipped" in line for line in h.logs)
