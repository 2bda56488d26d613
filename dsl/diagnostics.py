"""Diagnostics: what went wrong, where, and a hint, rendered like a compiler's messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from datablox.errors import TopologyError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Span:
    """A place in a source file: 1-based line and columns; ``end_col`` is exclusive."""

    file: str
    line: int
    col: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class JsonPath:
    """A place in a JSON document (``elements[2].class``) or another non-text origin."""

    file: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}: {self.path}" if self.path else self.file


Location = Span | JsonPath


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a topology."""

    severity: Severity
    message: str
    span: Location | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return render_one(self, {})


def error(message: str, span: Location | None = None, hint: str | None = None) -> Diagnostic:
    return Diagnostic("error", message, span, hint)


def warning(message: str, span: Location | None = None, hint: str | None = None) -> Diagnostic:
    return Diagnostic("warning", message, span, hint)


def errors_in(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diags if d.severity == "error"]


def unique(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats (a group instantiated twice reports a problem in its body once)."""
    seen: set[Diagnostic] = set()
    out = []
    for d in diags:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def in_source_order(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics by file (in order of first mention), line and column; others last."""
    items = list(diags)
    files: dict[str, int] = {}
    for d in items:
        if d.span is not None:
            files.setdefault(d.span.file, len(files))

    def key(d: Diagnostic) -> tuple[int, int, int]:
        if isinstance(d.span, Span):
            return (files[d.span.file], d.span.line, d.span.col)
        if d.span is not None:
            return (files[d.span.file], 0, 0)
        return (len(files), 0, 0)

    return sorted(items, key=key)


def _source_line(span: Span, sources: Mapping[str, str]) -> str | None:
    text = sources.get(span.file)
    if text is None:
        try:
            with open(span.file, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError, ValueError):
            return None
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        return lines[span.line - 1]
    return None


def render_one(diag: Diagnostic, sources: Mapping[str, str]) -> str:
    """One diagnostic: headline, location, source line with carets, hint."""
    out = [f"{diag.severity}: {diag.message}"]
    span = diag.span
    width = 1
    if isinstance(span, Span):
        line = _source_line(span, sources)
        width = len(str(span.line))
        pad = " " * width
        out.append(f"{pad}--> {span}")
        if line is not None:
            # Tabs in the padding keep the carets aligned with tab-indented source.
            lead = "".join("\t" if ch == "\t" else " " for ch in line[: span.col - 1])
            carets = "^" * max(1, min(span.end_col, len(line) + 1) - span.col)
            out += [f"{pad} |", f"{span.line} | {line}", f"{pad} | {lead}{carets}"]
    elif span is not None:
        out.append(f" --> {span}")
    if diag.hint:
        out.append(f"{' ' * width} = hint: {diag.hint}")
    return "\n".join(out)


def render(diags: Iterable[Diagnostic], sources: Mapping[str, str] | None = None) -> str:
    """All diagnostics, separated by blank lines."""
    return "\n\n".join(render_one(d, sources or {}) for d in diags)


def raise_if_errors(diags: Iterable[Diagnostic], sources: Mapping[str, str]) -> None:
    """Raise :class:`TopologyError` carrying the errors (warnings are left out)."""
    errors = in_source_order(errors_in(unique(diags)))
    if errors:
        raise TopologyError(errors, rendered=render(errors, sources))
