"""What a tenant's journeys can react to — so a ``profile.changed`` that no journey could use is
dropped before any DynamoDB call (most events of a shop: page views, product views, carts).

A journey *uses* an event name when it triggers on it, exits on it, converts on it, waits for it,
or branches on ``did_event`` of it; it uses ``created`` when it triggers on ``profile_created``; and
its branch ``condition`` reads the profile (traits, tags, computed attributes). Running
enrollments stay on the version they entered, so a journey's interest is the **union over every
version ever published**: the admin API accumulates it in the journey head at each publish
(``interest``). A head written before this existed (no ``interest``) with more than one version
makes the tenant's interest unknown: everything is relevant, as before.

Pure: no AWS calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from huiliu.journeys.definition import BranchStep, Journey, WaitStep
from huiliu.journeys.interpreter import ProfileView

# Traits the engine itself reads: the message locale and the person's time zone (wait until).
ENGINE_TRAITS = frozenset({"locale", "timezone", "time_zone", "tz"})


@dataclass(frozen=True)
class Interest:
    events: frozenset[str] = frozenset()  # event names a trigger/exit/goal/event-wait/did_event uses
    seen: frozenset[str] = frozenset()  # did_event names: the projection records when each was seen
    created: bool = False  # a profile_created trigger
    conditions: bool = False  # a branch condition reads the profile (computed attributes kept)
    segments: frozenset[str] = frozenset()  # segments a trigger, exit or branch condition names
    everything: bool = False  # unknown history: every event is relevant

    def as_json(self) -> dict[str, Any]:
        return {
            "events": sorted(self.events),
            "seen": sorted(self.seen),
            "created": self.created,
            "conditions": self.conditions,
            "segments": sorted(self.segments),
        }

    def __or__(self, other: Interest) -> Interest:
        return Interest(
            events=self.events | other.events,
            seen=self.seen | other.seen,
            created=self.created or other.created,
            conditions=self.conditions or other.conditions,
            segments=self.segments | other.segments,
            everything=self.everything or other.everything,
        )

    @classmethod
    def from_json(cls, data: Any) -> Interest:
        if not isinstance(data, dict):
            return cls(everything=True)
        return cls(
            events=frozenset(str(n) for n in data.get("events") or ()),
            seen=frozenset(str(n) for n in data.get("seen") or ()),
            created=bool(data.get("created")),
            conditions=bool(data.get("conditions")),
            segments=frozenset(str(n) for n in data.get("segments") or ()),
        )

    def keeps_seen(self, name: str) -> bool:
        return self.everything or name in self.seen

    def hears_segment(self, segment_id: str) -> bool:
        return self.everything or segment_id in self.segments

    def matters(self, detail: dict[str, Any]) -> bool:
        """Can this ``profile.changed`` change anything journeys keep or decide?"""
        if self.everything:
            return True
        if detail.get("created") and self.created:
            return True
        event = detail.get("event") or {}
        if event.get("name") and event["name"] in self.events:
            return True
        if detail.get("merged_from"):
            return True
        return self.touches_projection(detail)

    def touches_projection(self, detail: dict[str, Any]) -> bool:
        """Did this change set change a field the projection keeps (see :meth:`projects`)?"""
        if self.everything:
            return True
        changed = detail.get("changed") or {}
        if changed.get("unmerged"):
            return True  # identifiers went back to another profile: the routing identifier may too
        # identifiers_added alone does not matter: the projection's identifiers still resolve to
        # this profile (tag/trait actions route by them); they are refreshed with the next write.
        if self.conditions:  # a branch condition may read any trait, tag or computed attribute
            return any(changed.get(k) for k in ("traits", "tags_added", "tags_removed", "computed"))
        return any(name in ENGINE_TRAITS for name in changed.get("traits") or {})

    def projects(self, view: ProfileView) -> ProfileView:
        """What the projection keeps of a snapshot: everything when a condition may read it, else
        only what the engine itself reads (locale, time zone, identifiers, segments, seen)."""
        if self.everything or self.conditions:
            return view
        view.traits = {k: v for k, v in view.traits.items() if k in ENGINE_TRAITS}
        view.tags = []
        view.computed = {}
        return view


def interest_of(journey: Journey) -> Interest:
    events: set[str] = set()
    seen: set[str] = set()
    conditions = False
    if journey.trigger.event:
        events.add(journey.trigger.event)
    events |= {c.event for c in journey.exit if c.event}
    if journey.goal is not None:
        events.add(journey.goal.event)
    for step in journey.steps:
        if isinstance(step, WaitStep) and step.event is not None:
            events.add(step.event.event)
        if isinstance(step, BranchStep):
            if step.did_event:
                events.add(step.did_event)
                seen.add(step.did_event)
            if step.condition is not None:
                conditions = True
    return Interest(
        events=frozenset(events),
        seen=frozenset(seen),
        created=journey.trigger.profile_created,
        conditions=conditions,
        segments=frozenset(segment for _, segment in journey.segment_refs()),
    )


def head_interest(head: dict[str, Any], active: Journey | None) -> Interest:
    """A head's accumulated interest; derived from its only version when it predates the field."""
    if "interest" in head:
        return Interest.from_json(head["interest"])
    if active is not None and int(head.get("latest_version", 1) or 1) <= 1:
        return interest_of(active)
    return Interest(everything=True)


def union(interests: Iterable[Interest]) -> Interest:
    out = Interest()
    for i in interests:
        out = out | i
    return out
