"""Matching events against a journey's filters and hashing profiles into splits (pure)."""

from __future__ import annotations

import hashlib
from typing import Any

from huiliu.journeys.definition import PropertyFilter

_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """A dotted path into nested dicts (``items.0.sku`` indexes lists); missing -> _MISSING."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return str(needle) in haystack
    if isinstance(haystack, dict):
        return any(_contains(v, needle) or v == needle for v in haystack.values())
    if isinstance(haystack, list):
        return any(item == needle or _contains(item, needle) for item in haystack)
    return haystack == needle


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def filter_matches(flt: PropertyFilter, properties: dict[str, Any]) -> bool:
    value = lookup(properties, flt.property)
    if flt.op == "exists":
        return (value is not _MISSING and value is not None) == (flt.value is not False)
    if value is _MISSING:
        return flt.op == "ne"
    if flt.op == "eq":
        return value == flt.value or (str(value) == str(flt.value) and not isinstance(flt.value, bool))
    if flt.op == "ne":
        return value != flt.value
    if flt.op == "in":
        return isinstance(flt.value, list) and (value in flt.value or str(value) in map(str, flt.value))
    if flt.op == "contains":
        return _contains(value, flt.value)
    left, right = _number(value), _number(flt.value)
    if left is None or right is None:
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[flt.op]


def all_match(filters: list[PropertyFilter], properties: dict[str, Any]) -> bool:
    return all(filter_matches(f, properties) for f in filters)


def bucket(*parts: str) -> float:
    """A stable number in [0, 100) from the parts (the same profile always lands in the same place)."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1_000_000 / 10_000


def stable_id(*parts: str, length: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]
