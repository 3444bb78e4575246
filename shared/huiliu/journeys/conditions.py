"""Branch conditions in the segment language, evaluated against journeys' own profile projection.

Journeys compiles a branch's condition with the segments stage's pure compiler when it is
installed (``huiliu.segments``), else with the small evaluator below, which understands the
common core of the language: ``all`` / ``any`` / ``not`` and leaf comparisons on ``trait``,
``computed``, ``tag`` and ``in_segment``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from huiliu.journeys.definition import PropertyFilter
from huiliu.journeys.matching import filter_matches

Predicate = Callable[[dict[str, Any], datetime], bool]
_LEAF_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists")


def compile_condition(condition: dict[str, Any]) -> Predicate:
    """A predicate over a profile snapshot; ValueError (with the reason) for a bad condition."""
    segments_compile = _segments_compiler()
    if segments_compile is not None:
        return segments_compile(condition)
    return _compile(condition, "condition")


def _segments_compiler() -> Callable[[dict[str, Any]], Predicate] | None:
    try:
        from huiliu.journeys.segments_adapter import compile_with_segments
    except ImportError:
        return None
    return compile_with_segments


def _compile(node: Any, where: str) -> Predicate:
    if not isinstance(node, dict) or not node:
        raise ValueError(f"{where}: a condition is a non-empty mapping")
    if "all" in node or "any" in node:
        key = "all" if "all" in node else "any"
        parts = node[key]
        if not isinstance(parts, list) or not parts:
            raise ValueError(f"{where}.{key}: a non-empty list")
        compiled = [_compile(p, f"{where}.{key}[{i}]") for i, p in enumerate(parts)]
        if key == "all":
            return lambda snap, now: all(c(snap, now) for c in compiled)
        return lambda snap, now: any(c(snap, now) for c in compiled)
    if "not" in node:
        inner = _compile(node["not"], f"{where}.not")
        return lambda snap, now: not inner(snap, now)
    if "tag" in node:
        tag = str(node["tag"])
        return lambda snap, now: tag in (snap.get("tags") or [])
    if "in_segment" in node or "segment" in node:
        seg = str(node.get("in_segment") or node.get("segment"))
        return lambda snap, now: seg in (snap.get("segments") or [])
    for scope in ("trait", "computed"):
        if scope in node:
            op = node.get("op", "eq")
            if op not in _LEAF_OPS:
                raise ValueError(f"{where}.op: unknown operator {op!r}")
            flt = PropertyFilter(property=str(node[scope]), op=op, value=node.get("value"))
            bag = "traits" if scope == "trait" else "computed"
            return lambda snap, now: filter_matches(flt, snap.get(bag) or {})
    raise ValueError(f"{where}: unknown condition {sorted(node)}")
