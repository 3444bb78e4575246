"""Segments: a condition language compiled to closures, real-time membership, a due-time sweep.

Pure modules: ``language`` (definitions -> pydantic), ``compiler`` (closures, explain),
``builtin`` (lifecycle and RFM). See docs/segments.md.
"""

from huiliu.segments.compiler import Compiled, EvalContext, compile_condition, explain
from huiliu.segments.language import (
    SegmentDefinition,
    SegmentLanguageError,
    parse_condition,
    parse_definition,
)

__all__ = [
    "Compiled",
    "EvalContext",
    "SegmentDefinition",
    "SegmentLanguageError",
    "compile_condition",
    "explain",
    "parse_condition",
    "parse_definition",
]
