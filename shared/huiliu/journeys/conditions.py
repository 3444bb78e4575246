"""Branch conditions in the segment language, evaluated against journeys' own profile projection.

The segments stage's pure compiler (:mod:`huiliu.segments`) does the work; journeys adds the
profile context from its projection (traits, computed attributes, tags, identifiers, segment
memberships from ``segment.entered|exited``). Conditions that need the segments stage's own
per-profile event log (an event count or sum within a window) are refused at apply time: journeys
keeps no such log — reference a segment (``segment: id``) or use ``did_event`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from huiliu.segments import EvalContext
from huiliu.segments import compile_condition as compile_segment_condition

Predicate = Callable[[dict[str, Any], datetime], bool]


def compile_condition(condition: dict[str, Any]) -> Predicate:
    """A predicate over a profile snapshot; ValueError (with the path and reason) for a bad one."""
    compiled = compile_segment_condition(condition)
    if compiled.log_events:
        names = ", ".join(sorted(compiled.log_events))
        raise ValueError(
            f"event windows ({names}) need the segments stage's event log: "
            "reference a segment (segment: id) or use did_event"
        )

    def predicate(snapshot: dict[str, Any], now: datetime) -> bool:
        events = {
            name: [[_epoch(entry.get("last_at")), {}]]
            for name, entry in (snapshot.get("computed", {}).get("events") or {}).items()
            if isinstance(entry, dict) and entry.get("last_at")
        }
        ctx = EvalContext.of(
            snapshot, now=now.timestamp(), events=events, segments=set(snapshot.get("segments") or ())
        )
        return bool(compiled(ctx))

    return predicate


def _epoch(value: Any) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
