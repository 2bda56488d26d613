"""Element classes whose declarations cannot work are the class's fault, said at check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import TRACEBACK, console_script

MODULE = """
from datablox import Element, Param, Source, push_in, push_out, query_in, query_out


class NoHandler(Element):
    ports = (push_in("in"),)


class WrongSignature(Element):
    ports = (push_in("in"),)

    def on_record(self, record):
        pass


class NoAnswer(Element):
    ports = (query_in("get"),)


class BadDefault(Element):
    ports = (push_in("in"),)
    params = (Param("x", "int", "notanint"),)

    def on_record(self, port, record):
        pass


class TwoParams(Element):
    ports = (push_in("in"),)
    params = (Param("x", "int", 1), Param("x", "str", "a"))

    def on_record(self, port, record):
        pass


class SpacedPort(Element):
    ports = (push_in("in put"),)

    def on_record(self, port, record):
        pass


class ReservedPort(Element):
    ports = (push_in("element"),)

    def on_record(self, port, record):
        pass


class PortsString(Element):
    ports = "in"


class Asker(Element):
    ports = (push_in("in"), query_out("ask"))

    def on_record(self, port, record):
        self.ask("ask", record)


class AsyncHook(Element):
    ports = (push_in("in"),)

    async def on_record(self, port, record):
        pass


class YieldingHook(Element):
    ports = (push_in("in"),)

    def on_batch(self, port, records):
        yield from records


class StartWithoutParams(Element):
    ports = (push_in("in"),)

    def on_start(self):
        pass

    def on_record(self, port, record):
        pass


class SourceOnOtherPort(Source):
    ports = (push_out("data"),)

    def generate(self):
        yield {"a": 1}


class SourceWithoutGenerate(Source):
    ports = (push_out("out"),)


class SourceReturningNothing(Source):
    ports = (push_out("out"),)

    def generate(self):
        return None
"""


def master(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``datablox-master ARGS`` in ``folder``."""
    return subprocess.run(
        [console_script("datablox-master"), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


def check(folder: Path) -> subprocess.CompletedProcess[str]:
    """``datablox-master check t.topo`` in ``folder``."""
    return master(folder, "check", "t.topo")


@pytest.mark.parametrize(
    ("cls", "says"),
    [
        ("NoHandler", "has push in-port 'in' but defines no on_record or on_batch"),
        (
            "WrongSignature",
            "defines on_record(self, record), but the runtime calls it as (self, port, record)",
        ),
        ("NoAnswer", "has query in-port 'get' but defines no on_query"),
        ("BadDefault", "declares Param('x', 'int') with the default 'notanint', which is not"),
        ("TwoParams", "declares the parameter 'x' twice"),
        ("SpacedPort", "declares port 'in put', a name a .topo file cannot spell"),
        ("ReservedPort", "declares port 'element', a reserved word of the .topo language"),
        ("PortsString", "declares ports = 'in'; it must be a tuple of Port"),
        (
            "AsyncHook",
            "defines on_record with async def; the runtime calls it and does not await it",
        ),
        (
            "YieldingHook",
            "defines on_batch as a generator (it yields); the runtime calls it and runs none "
            "of its body",
        ),
        (
            "StartWithoutParams",
            "defines on_start(self), but the runtime calls it as (self, params)",
        ),
    ],
)
def test_a_class_whose_declarations_cannot_work_fails_check(
    tmp_path: Path, cls: str, says: str
) -> None:
    (tmp_path / "decl.py").write_text(MODULE)
    (tmp_path / "t.topo").write_text(
        "topology t {\n"
        "    element src = Generate(count=10)\n"
        f"    element x = decl:{cls}()\n"
        "    src -> x\n"
        "}\n"
    )
    done = check(tmp_path)
    assert done.returncode != 0, done.stderr
    assert f"element class 'decl:{cls}' {says}" in done.stderr, done.stderr
    assert "t.topo:3:" in done.stderr, "points at the class reference"
    assert "must not end the program" not in done.stderr, "not blamed on the import"
    assert not TRACEBACK.search(done.stderr)


def test_an_unconnected_query_out_port_is_a_warning_at_check(tmp_path: Path) -> None:
    (tmp_path / "decl.py").write_text(MODULE)
    (tmp_path / "t.topo").write_text(
        "topology t {\n"
        "    element src = Generate(count=10)\n"
        "    element x = decl:Asker()\n"
        "    src -> x\n"
        "}\n"
    )
    done = check(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "query out-port 'x.ask' is not connected: every question asked on it fails" in (
        done.stderr + done.stdout
    )


@pytest.mark.parametrize(
    ("element", "says"),
    [
        ("Generate(count=-1)", "parameter 'count' of Generate must be at least 0, got -1"),
        ("Generate(rate=0)", "parameter 'rate' of Generate must be more than 0, got 0"),
        ("Generate(rate=-5)", "parameter 'rate' of Generate must be more than 0, got -5"),
        ("Generate(keys=0)", "parameter 'keys' of Generate must be at least 1, got 0"),
    ],
)
def test_parameters_out_of_range_are_positioned_errors_at_check(
    tmp_path: Path, element: str, says: str
) -> None:
    (tmp_path / "t.topo").write_text(
        f"topology t {{\n    element src = {element}\n    element n = Null()\n    src -> n\n}}\n"
    )
    done = check(tmp_path)
    assert done.returncode != 0
    assert says in done.stderr
    value = element.partition("=")[2].rstrip(")")
    assert f"t.topo:2:{19 + element.index('=') + 1}" in done.stderr, done.stderr
    assert value and not TRACEBACK.search(done.stderr)


def test_a_user_class_declares_bounds_that_check_applies(tmp_path: Path) -> None:
    (tmp_path / "bounded.py").write_text(
        "from datablox import Element, Param, push_in\n\n\n"
        "class Bounded(Element):\n"
        '    ports = (push_in("in"),)\n'
        '    params = (Param("share", "number", 0.5, least=0, above=None),)\n\n'
        "    def on_record(self, port, record):\n"
        "        pass\n"
    )
    (tmp_path / "t.topo").write_text(
        "topology t {\n    element src = Generate(count=1)\n"
        "    element b = bounded:Bounded(share=-0.5)\n    src -> b\n}\n"
    )
    done = check(tmp_path)
    assert done.returncode != 0
    assert "parameter 'share' of bounded:Bounded must be at least 0, got -0.5" in done.stderr


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("topology t { }", 0, "warning: topology 't' has no elements: a run does nothing"),
        (
            "topology t {\n element s = Generate(count=3)\n element n = Null()\n s -> n\n"
            " fuse s\n}",
            0,
            "warning: fuse names one element ('s'): it fuses nothing",
        ),
        (
            "topology t {\n element s = Generate(count=3)\n element n = Null()\n s -> n\n"
            " fuse s, s, n\n}",
            2,
            "error: 's' is named twice in one fuse\n --> t.topo:5:10",
        ),
        (
            "topology t {\n element element = Generate(count=3)\n}",
            2,
            "hint: 'element' is a reserved word of the language and cannot be a name",
        ),
        (
            "topology t {\n element naïve = Generate(count=3)\n}",
            2,
            "hint: names are ASCII letters, digits and '_', and 'ï' is not ASCII",
        ),
        ("topology t {\n element a\x00 = Generate(count=3)\n}", 2, "unexpected character U+0000"),
        (
            "topology t {\n element s = Generate(count=3)\n element n = Null\n s -> n\n}",
            2,
            "error: expected '(', '.' or ':' here (found 's' on line 4)\n --> t.topo:3:18",
        ),
        (
            "topology t {\n element s = Generate(count=3)\n"
            ' element m = Map(set={"x": "value # 2"}) shard  # a comment\n s -> m\n}',
            2,
            "error: expected '(' here (found 's' on line 4)\n --> t.topo:3:47",
        ),
        (
            "topology t {\n element a = Generate()\n 1234\n}",
            2,
            "error: unexpected '1234'; expected ';', 'element'",
        ),
        (
            'topology t {\n element s = Generate(count=3)\n element w = JsonLinesSink(path="")\n'
            " s -> w\n}",
            2,
            "parameter 'path' of JsonLinesSink must be a file or folder name, not empty, got ''",
        ),
    ],
)
def test_small_topology_mistakes_are_said_plainly(
    tmp_path: Path, text: str, code: int, says: str
) -> None:
    (tmp_path / "t.topo").write_text(text + "\n", encoding="utf-8")
    done = check(tmp_path)
    assert done.returncode == code, done.stderr
    assert says in done.stderr


FUNCTIONS = """
def reshape(record):
    return record


NOT_A_FUNCTION = 3
"""


@pytest.mark.parametrize(
    ("fn", "says", "hint"),
    [
        ("shape:reshap", "parameter 'fn' of Map: module 'shape' has no 'reshap'", "'reshape'?"),
        ("shape:NOT_A_FUNCTION", "'shape:NOT_A_FUNCTION' is not callable", "name a function"),
        ("nosuch:f", "cannot import module 'nosuch' for function 'nosuch:f'", "PYTHONPATH"),
        ("shape", "'shape' is not a function reference", "package.module:name"),
        ("quits:f", "module 'quits' called sys.exit(3) while being imported", "__main__"),
        ("dies:f", "module 'dies' ended the process (os._exit(0))", "__main__"),
    ],
)
def test_a_map_function_that_cannot_be_imported_fails_check(
    tmp_path: Path, fn: str, says: str, hint: str
) -> None:
    """Map's fn is imported by check, in the child that imports user code, and a reference
    that cannot work is an error at its value; the user module runs only there."""
    (tmp_path / "shape.py").write_text(FUNCTIONS)
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "dies.py").write_text("import os\nos._exit(0)\n")
    (tmp_path / "t.topo").write_text(
        "topology t {\n  element s = Generate(count=3)\n"
        f'  element m = Map(fn="{fn}")\n  element n = Null()\n  s -> m -> n\n}}\n'
    )
    done = check(tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert hint in done.stderr
    assert not TRACEBACK.search(done.stderr)
    assert " --> t.topo:3:22" in done.stderr, done.stderr


def test_a_map_function_is_checked_before_a_run_touches_anything(tmp_path: Path) -> None:
    (tmp_path / "shape.py").write_text(FUNCTIONS)
    (tmp_path / "out.jsonl").write_text('{"kept": true}\n')
    (tmp_path / "t.topo").write_text(
        "topology t {\n  element s = Generate(count=3)\n"
        '  element m = Map(fn="shape:reshap")\n  element w = JsonLinesSink(path="out.jsonl")\n'
        "  s -> m -> w\n}\n"
    )
    done = master(tmp_path, "run", "t.topo")
    assert done.returncode == 2, done.stderr
    assert "parameter 'fn' of Map: module 'shape' has no 'reshap'" in done.stderr
    assert (tmp_path / "out.jsonl").read_text() == '{"kept": true}\n'
    assert not (tmp_path / ".datablox").exists(), "no run folder was made"


def test_a_map_function_that_imports_is_accepted_and_runs(tmp_path: Path) -> None:
    (tmp_path / "shape.py").write_text(FUNCTIONS)
    (tmp_path / "t.topo").write_text(
        "topology t {\n  element s = Generate(count=3)\n"
        '  element m = Map(fn="shape:reshape")\n  element w = JsonLinesSink(path="out.jsonl")\n'
        '  element e = Map(set={"x": "1"})\n  element n = Null()\n'
        "  s -> m -> w\n  s -> e -> n\n}\n"
    )
    assert check(tmp_path).returncode == 0
    done = master(tmp_path, "run", "t.topo", "--display", "quiet")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3


def test_an_input_file_that_is_not_there_is_a_warning_at_check(tmp_path: Path) -> None:
    """Built-in readers declare ``reads``; check warns (a file may yet be made before the
    run) at the value, and the run fails at start naming the file."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "there.csv").write_text("a\n1\n")
    (tmp_path / "t.topo").write_text(
        "topology t {\n"
        '  element a = CsvSource(path="data/*.csv")\n'
        '  element b = CsvSource(path="data/*.tsv")\n'
        '  element c = JsonLinesSource(path="missing.jsonl")\n'
        '  element d = KeyValueStore(path="data")\n'
        "  element n = Null()\n  a -> n\n  b -> n\n  c -> n\n}\n"
    )
    done = check(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "element 'a'" not in done.stderr
    assert (
        f"warning: element 'b' reads its path, but no file matches '{tmp_path}/data/*.tsv' (yet)"
        "\n --> t.topo:3:30"
    ) in done.stderr
    assert f"element 'c' reads its path, but file '{tmp_path}/missing.jsonl' does not exist" in (
        done.stderr
    )
    assert f"file '{tmp_path}/data' is a folder, not a file (yet)" in done.stderr
    assert "hint: CsvSource opens it when the run starts" in done.stderr


def test_a_function_module_that_ends_the_check_child_is_blamed_alone(tmp_path: Path) -> None:
    """A module that ends the child while imported is reported at its own element's fn;
    the other Maps are still checked (their fn imported by a new child, their expressions
    parsed), each at its own value."""
    (tmp_path / "shape.py").write_text(FUNCTIONS)
    (tmp_path / "dies.py").write_text("import os\nprint('bye')\nos._exit(4)\n")
    (tmp_path / "t.topo").write_text(
        "topology t {\n  element s = Generate(count=3)\n"
        '  element a = Map(fn="dies:f")\n'
        '  element b = Map(fn="shape:reshap")\n'
        '  element c = Map(fn="shape:reshape", set={"x": "1 +"})\n'
        "  element n = Null()\n  s -> a -> b -> c -> n\n}\n"
    )
    done = check(tmp_path)
    assert done.returncode == 2, done.stderr
    assert (
        "error: parameter 'fn' of Map: module 'dies' ended the process (os._exit(4)) while "
        "being imported\n --> t.topo:3:22"
    ) in done.stderr
    assert "its last output: bye" in done.stderr
    assert "module 'shape' has no 'reshap'\n --> t.topo:4:22" in done.stderr
    assert "parameter 'set.x' of Map: syntax error" in done.stderr
    assert done.stderr.count("error:") == 3, done.stderr


@pytest.mark.parametrize(
    ("cls", "says"),
    [
        (
            "SourceOnOtherPort",
            "is a Source whose records go to source_port = 'out', which is not one of its "
            "push out-ports (data): it would emit nothing",
        ),
        ("SourceWithoutGenerate", "is a Source but defines no generate()"),
    ],
)
def test_a_source_that_could_emit_nothing_fails_check(tmp_path: Path, cls: str, says: str) -> None:
    (tmp_path / "decl.py").write_text(MODULE)
    (tmp_path / "t.topo").write_text(
        f"topology t {{\n    element x = decl:{cls}()\n    element n = Count()\n    x -> n\n}}\n"
    )
    done = check(tmp_path)
    assert done.returncode != 0, done.stderr
    assert f"element class 'decl:{cls}' {says}" in done.stderr, done.stderr
    assert "t.topo:2:" in done.stderr
    assert not TRACEBACK.search(done.stderr)


def test_a_generate_that_returns_nothing_is_a_start_error_naming_the_element(
    tmp_path: Path,
) -> None:
    (tmp_path / "decl.py").write_text(MODULE)
    (tmp_path / "t.topo").write_text(
        "topology t {\n    element x = decl:SourceReturningNothing()\n"
        "    element n = Count()\n    x -> n\n}\n"
    )
    done = master(tmp_path, "run", "t.topo", "--display", "plain")
    assert done.returncode == 1, done.stderr
    assert (
        "error: element 'x' could not start: generate() returned NoneType, not an iterator "
        "of records (write it as a generator: yield each record)" in done.stderr
    ), done.stderr
    assert not TRACEBACK.search(done.stderr)
