"""Reading source files: UTF-8 with or without a byte-order mark; bad bytes get line:col."""

from __future__ import annotations

from datablox.dsl.diagnostics import Diagnostic, Span, error

BOM = "\ufeff"


def strip_bom(text: str) -> str:
    """``text`` without a leading byte-order mark (Notepad and Excel write one)."""
    return text[1:] if text.startswith(BOM) else text


def decode(data: bytes, file: str) -> tuple[str, Diagnostic | None]:
    """The text of ``data``; on bytes that are not UTF-8, a best-effort text and an error.

    The error points at the first bad byte by line and column; the returned text
    has it replaced, so the error can show the line with a caret.
    """
    try:
        return strip_bom(data.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        start_of_line = before.rfind(b"\n") + 1
        col = len(before[start_of_line:].decode("utf-8", errors="replace")) + 1
        if line == 1 and data.startswith(BOM.encode()):
            col -= 1
        text = strip_bom(data.decode("utf-8", errors="replace"))
        bad = data[exc.start : exc.end].hex(" ")
        diag = error(
            f"this file is not UTF-8 text: byte(s) {bad} cannot be decoded",
            Span(file, line, col, col + 1),
            "save the file as UTF-8 (plain ASCII is UTF-8 too)",
        )
        return text, diag


def read_text(path: str, shown: str) -> tuple[str, Diagnostic | None]:
    """Read ``path`` (named ``shown`` in messages); OSError is left to the caller."""
    with open(path, "rb") as fh:
        data = fh.read()
    return decode(data, shown)
