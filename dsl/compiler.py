"""The compile pipeline: .topo or tradecraft JSON in, checked tradecraft dict out."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datablox import registry
from datablox.dsl import ir
from datablox.dsl.checker import check
from datablox.dsl.diagnostics import (
    Diagnostic,
    Span,
    error,
    in_source_order,
    raise_if_errors,
    render,
)
from datablox.dsl.expand import expand
from datablox.dsl.limits import DEPTH_HINT, MAX_DEPTH, bracket_overflow, too_deep
from datablox.dsl.loader import load
from datablox.dsl.overrides import apply_overrides
from datablox.dsl.overrides import sources as override_sources
from datablox.dsl.source import read_text, strip_bom
from datablox.dsl.tradecraft import from_dict, to_dict
from datablox.errors import TopologyError

#: Brackets tradecraft JSON opens before a parameter value: the top object, the
#: elements list, an element, its params.
_JSON_LEVELS = 4


@dataclass
class CompileResult:
    """A checked topology: its tradecraft dict and the warnings found on the way."""

    tradecraft: dict[str, Any]
    warnings: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def rendered_warnings(self) -> str:
        return render(self.warnings, self.sources)


def _fail(message: str, hint: str | None = None) -> TopologyError:
    diag = error(message, None, hint)
    return TopologyError([diag], rendered=render([diag]))


def _finish(
    topo: ir.Topology,
    spans: ir.Spans,
    diags: list[Diagnostic],
    overrides: Sequence[str],
    sources: Mapping[str, str],
    group_names: Sequence[str] = (),
    path_base: str | None = None,
) -> CompileResult:
    sources = {**sources, **override_sources(overrides)}
    diags = diags + apply_overrides(topo, spans, overrides)
    for folder in topo.search_path:
        registry.add_search_path(folder)
    checked, found = check(topo, spans, group_names=group_names, path_base=path_base)
    diags += found
    raise_if_errors(diags, sources)
    warnings = in_source_order(d for d in diags if d.severity == "warning")
    return CompileResult(to_dict(checked), warnings, dict(sources))


def _compile(
    text: str, shown: str, real: str, search_path: list[str], overrides: Sequence[str]
) -> CompileResult:
    program = load(text, shown, real)
    raise_if_errors(program.diagnostics, program.sources)
    topo, spans, diags, groups = expand(program, search_path)
    # Relative paths in parameters are relative to the .topo file's folder.
    base = os.path.dirname(real)
    return _finish(topo, spans, diags, overrides, program.sources, groups, base)


def compile_source(
    text: str, filename: str = "<string>", overrides: Sequence[str] = ()
) -> CompileResult:
    """Compile .topo ``text``; ``filename`` is used in messages and to find imports."""
    named = not filename.startswith("<")
    folder = os.path.abspath(os.path.dirname(filename) if named else ".")
    real = os.path.abspath(filename) if named else os.path.join(folder, filename)
    return _compile(strip_bom(text), filename, real, [folder], overrides)


def _read(path: str) -> str:
    try:
        text, bad = read_text(path, path)
    except FileNotFoundError:
        raise _fail(f"cannot read '{path}': no such file") from None
    except IsADirectoryError:
        raise _fail(f"cannot read '{path}': it is a folder") from None
    except OSError as exc:
        raise _fail(f"cannot read '{path}': {exc.strerror or exc}") from None
    if bad is not None:
        raise TopologyError([bad], rendered=render([bad], {path: text}))
    return text


def compile_file(path: str, overrides: Sequence[str] = ()) -> CompileResult:
    """Compile a .topo file; ``search_path`` is its folder."""
    text = _read(path)
    folder = os.path.dirname(os.path.abspath(path))
    return _compile(text, path, os.path.abspath(path), [folder], overrides)


def load_tradecraft(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any], overrides: Sequence[str] = ()
) -> CompileResult:
    """Check a tradecraft JSON file (or an already-loaded dict)."""
    if isinstance(path_or_dict, Mapping):
        data: Any = dict(path_or_dict)
        where = "<tradecraft>"
        sources: dict[str, str] = {}
    else:
        where = os.fspath(path_or_dict)
        text = _read(where)
        sources = {where: text}
        deep = bracket_overflow(text, MAX_DEPTH + _JSON_LEVELS)
        if deep is not None:
            line, col = deep
            diag = error(too_deep(), Span(where, line, col, col + 1), DEPTH_HINT)
            raise TopologyError([diag], rendered=render([diag], sources))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            diag = error(
                f"invalid JSON: {exc.msg}", Span(where, exc.lineno, exc.colno, exc.colno + 1)
            )
            raise TopologyError([diag], rendered=render([diag], sources)) from None
    topo, spans, diags = from_dict(data, where)
    raise_if_errors(diags, sources)
    assert topo is not None
    return _finish(topo, spans, diags, overrides, sources)


def load_any(path: str, overrides: Sequence[str] = ()) -> CompileResult:
    """Compile a .topo file or check a tradecraft .json file, by extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        return load_tradecraft(path, overrides)
    if ext == ".topo":
        return compile_file(path, overrides)
    raise _fail(
        f"don't know how to read '{path}'",
        "give a .topo file or a tradecraft .json file",
    )
