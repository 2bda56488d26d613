"""Shared helpers for the .topo error tests: compile text and return the rendered errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from datablox.dsl import compile_source
from datablox.errors import TopologyError

CASES = Path(__file__).parent / "dslcases"


@pytest.fixture(autouse=True)
def _in_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)


def rendered(text: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(TopologyError) as info:
        compile_source(textwrap.dedent(text).lstrip("\n"), "t.topo", overrides)
    assert str(info.value).startswith("error: ")
    return str(info.value)


def block(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def expect(text: str, *blocks: str) -> str:
    out = rendered(text)
    for b in blocks:
        assert block(b) in out, out
    return out
