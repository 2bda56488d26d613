"""Reading a .topo file and the files it imports; collecting their groups."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from datablox.dsl import ast
from datablox.dsl.diagnostics import Diagnostic, JsonPath, Span, error
from datablox.dsl.parser import parse
from datablox.dsl.source import read_text


@dataclass
class Program:
    """A main file with everything it imports, ready to expand."""

    main: ast.Module | None
    groups: dict[str, ast.GroupDef] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _Loader:
    def __init__(self) -> None:
        self.program = Program(None)
        self.loaded: set[str] = set()

    def _add_groups(self, module: ast.Module) -> None:
        for group in module.groups:
            first = self.program.groups.get(group.name.text)
            if first is not None:
                self.program.diagnostics.append(
                    error(
                        f"duplicate group name '{group.name.text}'",
                        group.name.span,
                        f"first defined at {first.name.span}",
                    )
                )
                continue
            self.program.groups[group.name.text] = group

    def visit(self, module: ast.Module, real: str, stack: list[str]) -> None:
        """Load the imports of ``module`` (read from ``real``), depth first."""
        self._add_groups(module)
        for imp in module.imports:
            self._import(imp, module.file, real, stack)

    def _import(self, imp: ast.Import, shown_by: str, real_by: str, stack: list[str]) -> None:
        real = os.path.normpath(os.path.join(os.path.dirname(real_by), imp.path))
        shown = os.path.normpath(os.path.join(os.path.dirname(shown_by), imp.path))
        diags = self.program.diagnostics
        if real in stack:
            names = [os.path.basename(p) for p in stack[stack.index(real) :]]
            chain = " -> ".join([*names, os.path.basename(real)])
            diags.append(
                error(
                    f"import cycle: {chain}",
                    imp.span,
                    "move the shared groups into a file that imports neither",
                )
            )
            return
        if real in self.loaded:
            return  # a diamond: the file's groups are already known
        self.loaded.add(real)
        try:
            text, bad = read_text(real, shown)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            diags.append(
                error(
                    f"cannot read imported file '{imp.path}': {reason}",
                    imp.span,
                    f"import paths are relative to the importing file's folder "
                    f"({os.path.dirname(real) or '.'})",
                )
            )
            return
        self.program.sources[shown] = text
        if bad is not None:
            diags.append(bad)
            return
        module, parse_diags = parse(text, shown)
        diags.extend(parse_diags)
        if module is None:
            return
        for topo in module.topologies:
            diags.append(
                error(
                    f"imported file '{imp.path}' defines topology '{topo.name.text}'",
                    topo.name.span,
                    "only groups can be imported; move the topology to its own file",
                )
            )
        self.visit(module, real, [*stack, real])


def load(text: str, shown: str, real: str) -> Program:
    """Parse ``text`` (file ``shown`` in messages, ``real`` on disk) and its imports."""
    loader = _Loader()
    program = loader.program
    program.sources[shown] = text
    module, diags = parse(text, shown)
    program.diagnostics.extend(diags)
    if module is None:
        return program
    program.main = module
    real = os.path.normpath(real)
    loader.loaded.add(real)
    loader.visit(module, real, [real])
    _add_builtin_groups(program)
    if not module.topologies:
        program.diagnostics.append(
            error(
                "no topology in this file",
                JsonPath(shown),
                "write `topology NAME { ... }`; a file of groups only can be imported",
            )
        )
    for extra in module.topologies[1:]:
        first: Span = module.topologies[0].name.span
        program.diagnostics.append(
            error(
                f"second topology '{extra.name.text}' in one file",
                extra.name.span,
                f"a file holds at most one topology; the first is at {first}",
            )
        )
    return program


#: Groups every topology can use without an import (a group of the same name in the
#: user's files takes precedence).
BUILTIN_GROUPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "join.topo")


def builtin_groups() -> dict[str, str]:
    """Each built-in group's name and its text: the comment just above it and its definition."""
    text, _ = read_text(BUILTIN_GROUPS, "<datablox>/join.topo")
    lines = text.splitlines()
    found: dict[str, str] = {}
    comment: list[str] = []
    i = 0
    while i < len(lines):
        start = re.match(r"group (\w+)\(", lines[i])
        if start is None:
            comment = [*comment, lines[i]] if lines[i].startswith("#") else []
            i += 1
            continue
        end = next(j for j in range(i, len(lines)) if lines[j].rstrip() == "}")
        found[start.group(1)] = "\n".join([*comment, *lines[i : end + 1]])
        comment = []
        i = end + 1
    return found


def _add_builtin_groups(program: Program) -> None:
    shown = "<datablox>/join.topo"
    text, _ = read_text(BUILTIN_GROUPS, shown)
    module, diags = parse(text, shown)
    if module is None:  # a broken installation: say so rather than fail later
        program.diagnostics.extend(diags)
        return
    program.sources[shown] = text
    for group in module.groups:
        program.groups.setdefault(group.name.text, group)
