"""The .topo language: parse, expand groups, check, and compile to tradecraft JSON."""

from datablox.dsl.compiler import (
    CompileResult,
    compile_file,
    compile_source,
    load_any,
    load_tradecraft,
)
from datablox.dsl.diagnostics import Diagnostic, JsonPath, Span, render

__all__ = [
    "CompileResult",
    "Diagnostic",
    "JsonPath",
    "Span",
    "compile_file",
    "compile_source",
    "load_any",
    "load_tradecraft",
    "render",
]
