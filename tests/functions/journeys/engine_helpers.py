"""A journeys engine on moto: repository, memory publisher, manual clock, event builders."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from huiliu.bus import MemoryPublisher
from huiliu.clock import ManualClock
from huiliu.journeys.admin import JourneyAdmin
from huiliu.journeys.definition import Catalog
from huiliu.journeys.examples import SEGMENTS, TEMPLATES, example_documents
from huiliu.journeys.interpreter import iso
from huiliu.journeys.repository import JourneysRepository
from huiliu.journeys.service import Definitions, JourneysService, JourneyTicker

from tests.unit.journeys.journey_helpers import T0, TENANT

_ids = itertools.count(1)


@dataclass
class Engine:
    repo: JourneysRepository
    bus: MemoryPublisher
    clock: ManualClock
    service: JourneysService
    ticker: JourneyTicker
    admin: JourneyAdmin
    versions: dict[str, int] = field(default_factory=dict)

    def tick(self, after: timedelta = timedelta(0)) -> Any:
        self.clock.advance(after)
        return self.ticker.tick(self.clock.now())

    def send(self, detail_type: str, detail: dict[str, Any]) -> Any:
        self.service.definitions.forget()
        return self.service.handle_detail(detail_type, detail)

    def requested(self) -> list[dict[str, Any]]:
        return [e.detail for e in self.bus.of_type("notification.requested")]

    def ingested(self) -> list[dict[str, Any]]:
        return [e.detail for e in self.bus.of_type("event.ingested")]


def make_engine(table: str, *, apply_examples: bool = True, workers: int = 4) -> Engine:
    repo = JourneysRepository(table)
    bus = MemoryPublisher()
    clock = ManualClock(T0)
    definitions = Definitions(repo, cache_seconds=0)
    service = JourneysService(repo, bus, clock=clock, definitions=definitions)
    ticker = JourneyTicker(repo, bus, definitions=Definitions(repo, cache_seconds=0), workers=workers)
    admin = JourneyAdmin(repo, lambda t: Catalog(segments=set(SEGMENTS), templates=set(TEMPLATES)), clock)
    engine = Engine(repo, bus, clock, service, ticker, admin)
    if apply_examples:
        for doc in example_documents():
            engine.versions[doc["id"]] = admin.apply(TENANT, doc)["version"]
    return engine


def profile_changed(
    profile_id: str,
    version: int,
    *,
    event: str | None = None,
    properties: dict[str, Any] | None = None,
    created: bool = False,
    traits: dict[str, Any] | None = None,
    event_id: str | None = None,
    at: Any = None,
) -> dict[str, Any]:
    eid = event_id or f"ev-{next(_ids)}"
    return {
        "event_id": eid,
        "tenant_id": TENANT,
        "correlation_id": f"c-{eid}",
        "occurred_at": iso(at or T0),
        "profile_id": profile_id,
        "version": version,
        "created": created,
        "changed": {},
        "event": (
            {
                "message_id": f"m-{eid}",
                "type": "track",
                "name": event,
                "timestamp": iso(at or T0),
                "source": "shopify",
                "properties": properties or {},
            }
            if event
            else None
        ),
        "profile": {
            "profile_id": profile_id,
            "version": version,
            "created_at": iso(T0),
            "identifiers": [{"type": "phone", "value": f"+8613800{profile_id[-6:]:0>6}"}],
            "traits": traits or {},
            "tags": [],
            "consent": {},
            "computed": {},
        },
    }


def segment_event(kind: str, profile_id: str, segment_id: str, *, backfill: bool = False) -> dict[str, Any]:
    eid = f"seg-{next(_ids)}"
    return {
        "event_id": eid,
        "tenant_id": TENANT,
        "correlation_id": None,
        "occurred_at": iso(T0),
        "segment_id": segment_id,
        "segment_version": 1,
        "profile_id": profile_id,
        "profile_version": 1,
        "reason": "condition",
        "backfill": backfill,
        "profile": None,
    }
