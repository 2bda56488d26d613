"""``datablox.run`` called wrongly: a project error naming the argument as the API spells it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import datablox
from datablox.codec import get_codec
from datablox.errors import CodecError, DatabloxError, RunError
from datablox.master.runopts import RunOptions
from datablox.testing import ElementHarness, HarnessError

TOPO = """topology t {
    element src = Generate(count=10)
    element n = Null()
    src -> n
}
"""


@pytest.fixture
def topo(tmp_path: Path) -> Path:
    path = tmp_path / "t.topo"
    path.write_text(TOPO)
    return path


def refused(tmp_path: Path, topology: Any, **arguments: Any) -> str:
    """The text of the error ``datablox.run`` raises; nothing may have started."""
    with pytest.raises(DatabloxError) as caught:
        datablox.run(topology, run_dir=tmp_path / "run", **arguments)
    assert not (tmp_path / "run").exists()
    return str(caught.value)


def test_an_unknown_codec_raises_naming_the_codec_argument(tmp_path: Path, topo: Path) -> None:
    text = refused(tmp_path, topo, codec="nonsense")
    assert text == "codec= must be orjson, ujson or msgpack, got 'nonsense'"


@pytest.mark.parametrize(
    ("option", "value", "text"),
    [
        ("fusion", "sometimes", "fusion= must be auto, off or max, got 'sometimes'"),
        ("batch_size", 0, "batch_size= must be a whole number of at least 1, got 0"),
        ("heartbeat_timeout", 1, "heartbeat_timeout= must be at least 1.5 s (3 heartbeats), got 1"),
    ],
)
def test_option_errors_name_the_keyword_and_the_cli_keeps_its_flags(
    tmp_path: Path, topo: Path, option: str, value: Any, text: str
) -> None:
    with pytest.raises(RunError) as caught:
        datablox.run(topo, run_dir=tmp_path / "run", **{option: value})
    assert str(caught.value) == text
    with pytest.raises(RunError) as cli:
        RunOptions(**{option: value}).validate()
    flag = "--" + option.replace("_", "-")
    assert str(cli.value) == flag + text[len(option) + 1 :]


def test_overrides_given_as_one_string_is_refused(tmp_path: Path, topo: Path) -> None:
    text = refused(tmp_path, topo, overrides="src.count=5")
    assert text == (
        'overrides= takes a list of "element.param=value" strings, got the string '
        "'src.count=5'\n  hint: write overrides=['src.count=5']"
    )


@pytest.mark.parametrize(
    ("topology", "got"), [(123, "int 123"), (None, "None"), (["t.topo"], "list ['t.topo']")]
)
def test_a_topology_of_the_wrong_type_is_refused(tmp_path: Path, topology: Any, got: str) -> None:
    text = refused(tmp_path, topology)
    assert text == (
        "topology (the first argument) must be a .topo path, a tradecraft .json path or a "
        f"tradecraft dict, got {got}"
    )


def test_an_unknown_codec_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABLOX_CODEC", "nonsense")
    with pytest.raises(CodecError) as caught:
        get_codec()
    assert str(caught.value) == (
        "unknown codec 'nonsense' (from the environment variable DATABLOX_CODEC)\n"
        "  hint: choose one of orjson, ujson, msgpack"
    )


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({"run_dir": 5}, "run_dir= must be a folder path (a str or Path), got int 5"),
        ({"slots": "2"}, "slots= must be a whole number of at least 1, got '2'"),
        ({"display": "loud"}, "display= must be quiet, plain or live, got 'loud'"),
        ({"encrypt_data": "false"}, "encrypt_data= must be True or False, got 'false'"),
        ({"autoscale": 0}, "autoscale= must be True or False, got 0"),
        ({"reshard": "s:members=2@10"}, "reshard= takes a list of strings, got 's:members=2@10'"),
        ({"ship": "pkg"}, "ship= takes a list of strings, got 'pkg'"),
        (
            {"overrides": ["src.count=5", 5]},
            'overrides= takes a list of "element.param=value" strings, got int 5 in it',
        ),
        ({"fuson": "off"}, "run() has no argument 'fuson'\n  hint: did you mean 'fusion'?"),
    ],
)
def test_other_arguments_of_the_wrong_type_are_refused(
    tmp_path: Path, topo: Path, arguments: dict[str, Any], text: str
) -> None:
    with pytest.raises(DatabloxError) as caught:
        datablox.run(topo, **{"run_dir": tmp_path / "run", **arguments})
    assert str(caught.value) == text
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("use", "says"),
    [
        (
            lambda: ElementHarness(dict),
            "ElementHarness drives an Element subclass, got <class 'dict'>",
        ),
        (
            lambda: ElementHarness("Count").push([{}], port="out"),
            "Count has no push in-port 'out'\n  hint: its push in-ports: in",
        ),
        (
            lambda: ElementHarness("Filter", {"where": "v > 0"}).take("in"),
            "Filter has no push out-port 'in'\n  hint: its push out-ports: out",
        ),
        (
            lambda: ElementHarness("Filter", {"where": "v > 0"}).take_connection(1),
            "port 'out' has 1 connection(s), so no connection 1",
        ),
        (
            lambda: ElementHarness("Count").query({}, "lookup"),
            "Count has no query in-port 'lookup'\n  hint: it has no query in-port",
        ),
        (lambda: ElementHarness("Count").end("input"), "Count has no push in-port 'input'"),
        (
            lambda: ElementHarness("Count").run_source(),
            "Count is not a Source, so it has no generate() to run",
        ),
    ],
)
def test_the_element_harness_used_wrongly_says_what_is_wrong(use: Any, says: str) -> None:
    """Before: an AttributeError, a KeyError or an empty list for a port that is not there."""
    with pytest.raises(HarnessError) as caught:
        use()
    assert str(caught.value).startswith(says), str(caught.value)


def test_a_topology_over_max_processes_is_refused_before_it_starts(
    tmp_path: Path, topo: Path
) -> None:
    """Before: --max-processes bounded only the members a shard added."""
    text = refused(tmp_path, topo, fusion="off", max_processes=1)
    assert text == (
        "the topology needs 2 element processes on node 'local'; --max-processes allows 1 "
        "per node\n  hint: fuse chains (--fusion auto or max), or allow more processes"
    )
    result = datablox.run(topo, run_dir=tmp_path / "run2", fusion="max", max_processes=1)
    assert result.exit_code == 0
