"""Builders for segments tests: profile events, a service over the in-memory store, definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.clock import ManualClock
from huiliu.contracts import ProfileChanged, ProfileSnapshot, TriggerEvent, derive_event_id
from huiliu.segments.admin import SegmentsAdmin
from huiliu.segments.repository import MemorySegmentsStore
from huiliu.segments.service import SegmentsService

TENANT = "acme"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


class Person:
    """Builds a profile's successive profile.changed events the way identity would."""

    def __init__(self, profile_id: str = "p1", tenant: str = TENANT) -> None:
        self.profile_id = profile_id
        self.tenant = tenant
        self.version = 0
        self.traits: dict[str, Any] = {}
        self.tags: list[str] = []
        self.consent: dict[str, Any] = {}
        self.identifiers: list[dict[str, str]] = [{"type": "user_id", "value": profile_id}]
        self.computed: dict[str, Any] = {"events": {}}

    def snapshot(self) -> ProfileSnapshot:
        return ProfileSnapshot(
            profile_id=self.profile_id,
            version=self.version,
            created_at=iso(T0),
            identifiers=self.identifiers,
            traits=dict(self.traits),
            tags=list(self.tags),
            consent=dict(self.consent),
            computed={**self.computed, "events": {k: dict(v) for k, v in self.computed["events"].items()}},
        )

    def _changed(self, changed: dict[str, Any], event: TriggerEvent | None, **extra: Any) -> ProfileChanged:
        self.version += 1
        return ProfileChanged(
            event_id=derive_event_id("test", self.profile_id, self.version),
            tenant_id=self.tenant,
            occurred_at=iso(T0),
            profile_id=self.profile_id,
            version=self.version,
            created=self.version == 1,  # as identity marks a new profile's first change
            changed=changed,
            event=event,
            profile=self.snapshot(),
            **extra,
        )

    def track(self, name: str, at: datetime, **properties: Any) -> ProfileChanged:
        entry = self.computed["events"].setdefault(name, {"count": 0, "last_at": iso(at)})
        entry["count"] += 1
        entry["last_at"] = max(entry["last_at"], iso(at))
        changed: dict[str, Any] = {f"events.{name}": dict(entry)}
        self.computed["event_count"] = self.computed.get("event_count", 0) + 1
        self.computed["last_seen"] = max(self.computed.get("last_seen", iso(at)), iso(at))
        changed["event_count"] = self.computed["event_count"]
        if name == "Order Completed":
            c = self.computed
            c["order_count"] = c.get("order_count", 0) + 1
            c["revenue_total"] = c.get("revenue_total", 0) + properties.get("revenue", 0)
            c["first_order_at"] = min(c.get("first_order_at", iso(at)), iso(at))
            c["last_order_at"] = max(c.get("last_order_at", iso(at)), iso(at))
            for key in ("order_count", "revenue_total", "first_order_at", "last_order_at"):
                changed[key] = c[key]
        trigger = TriggerEvent(
            message_id=f"m-{self.profile_id}-{self.version + 1}",
            type="track",
            name=name,
            timestamp=iso(at),
            properties=properties,
        )
        return self._changed({"computed": changed}, trigger)

    def set(self, **traits: Any) -> ProfileChanged:
        self.traits.update(traits)
        return self._changed({"traits": traits}, None)

    def tag(self, *tags: str) -> ProfileChanged:
        self.tags = sorted(set(self.tags) | set(tags))
        return self._changed({"tags_added": list(tags)}, None)


class World:
    """A segments service and admin over one in-memory store, with a manual clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.clock = ManualClock(start)
        self.store = MemorySegmentsStore()
        self.service = SegmentsService(self.store, clock=self.clock, cache_seconds=0)
        self.admin = SegmentsAdmin(self.store, clock=self.clock)

    def define(self, *docs: dict[str, Any]) -> Any:
        return self.admin.apply(TENANT, list(docs))

    def send(self, event: Any) -> list[Any]:
        return list(self.service.handle(event))

    def advance(self, days: float) -> list[Any]:
        now = self.clock.advance(timedelta(days=days))
        return list(self.service.tick(now))

    def members(self, sid: str) -> set[str]:
        items, _ = self.store.members(TENANT, sid, limit=1000, cursor=None)
        return {i["profile_id"] for i in items}


def seg(sid: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {"id": sid, "name": sid.replace("_", " ").title(), "condition": condition}


def kinds(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.DETAIL_TYPE, e.segment_id, e.reason) for e in events]
