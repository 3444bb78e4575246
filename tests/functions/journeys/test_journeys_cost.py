"""What a profile.changed costs journeys: nothing when no journey (of any version) can use it, a
read and no write when it changes nothing journeys keep, and a publish seen within the cache TTL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.journeys.repository import profile_pk
from huiliu.journeys.service import DEFINITIONS_TTL_SECONDS, Definitions, JourneysService

from tests.functions.journeys.engine_helpers import Engine, make_engine, profile_changed
from tests.unit.journeys.journey_helpers import TENANT


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(deployed: Any) -> Engine:
    return make_engine(deployed.tables["JourneysTable"])


def cached_service(engine: Engine, clock: Monotonic) -> JourneysService:
    """A service like the function's: heads cached for the TTL (the test engine's cache is off)."""
    definitions = Definitions(engine.repo, monotonic=clock)
    return JourneysService(engine.repo, engine.bus, clock=engine.clock, definitions=definitions)


def calls(engine: Engine) -> dict[str, int]:
    return dict(engine.repo.stats.by_op)


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_an_event_no_journey_uses_costs_no_dynamodb_call(engine: Engine) -> None:
    service = cached_service(engine, Monotonic())
    service.handle_detail("profile.changed", profile_changed("p-c00001", 1, event="Signed Up", created=True))
    before = calls(engine)
    for version, name in enumerate(["Product Viewed", "Page Viewed", "Cart Updated"], start=2):
        change = profile_changed("p-c00001", version, event=name)
        change["changed"] = {"computed": {"event_count": version}, "traits": {"city": "上海"}}
        assert service.handle_detail("profile.changed", change) is None
    assert delta(before, calls(engine)) == {}
    assert service.skipped == 3
    # ...but an event a journey exits on still reaches the enrollment at once.
    service.handle_detail("profile.changed", profile_changed("p-c00001", 5, event="Order Completed"))
    [e] = engine.repo.enrollments_of(TENANT, "p-c00001")
    assert e.exit_reason == "event:Order Completed"


def test_a_watched_event_that_changes_nothing_kept_reads_once_and_writes_nothing(engine: Engine) -> None:
    service = cached_service(engine, Monotonic())
    service.handle_detail("profile.changed", profile_changed("p-c00002", 1, event="Signed Up", created=True))
    before = calls(engine)
    # Order Refunded: cross-sell's exit; this person has no cross-sell instance, nothing projected changed.
    service.handle_detail("profile.changed", profile_changed("p-c00002", 2, event="Order Refunded"))
    assert delta(before, calls(engine)) == {"Query": 1}


def test_a_trait_change_of_an_enrolled_person_updates_the_projection(engine: Engine) -> None:
    service = cached_service(engine, Monotonic())
    service.handle_detail("profile.changed", profile_changed("p-c00003", 1, event="Signed Up", created=True))
    change = profile_changed("p-c00003", 2, event="Profile Updated", traits={"locale": "en-US"})
    change["changed"] = {"traits": {"locale": "en-US"}}
    service.handle_detail("profile.changed", change)
    stored = engine.repo.get(profile_pk(TENANT, "p-c00003"), "PROFILE")
    assert stored is not None
    assert stored["traits"] == {"locale": "en-US"}
    assert stored["version"] == 2
    # Computed attributes are not kept when no branch condition reads them (they change every event).
    assert stored.get("computed") in (None, {})
    engine.tick(timedelta(days=3))
    [sms] = engine.requested()
    assert sms["locale"] == "en-US"


def test_a_published_version_takes_effect_within_the_cache_ttl(engine: Engine) -> None:
    clock = Monotonic()
    service = cached_service(engine, clock)
    service.handle_detail("profile.changed", profile_changed("p-c00004", 1, event="Signed Up", created=True))
    doc = next(d for d in _examples() if d["id"] == "signup-coupon")
    v2 = engine.admin.apply(TENANT, {**doc, "steps": [{"id": "wait-1d", "type": "wait", "duration": "1d"}]})
    assert v2["version"] == 2
    clock.now += DEFINITIONS_TTL_SECONDS / 2  # still cached: new people enter version 1
    service.handle_detail("profile.changed", profile_changed("p-c00005", 1, event="Signed Up", created=True))
    clock.now += DEFINITIONS_TTL_SECONDS  # past the TTL: version 2 from now on
    service.handle_detail("profile.changed", profile_changed("p-c00006", 1, event="Signed Up", created=True))
    versions = {
        pid: engine.repo.enrollments_of(TENANT, pid)[0].journey_version
        for pid in ("p-c00004", "p-c00005", "p-c00006")
    }
    assert versions == {"p-c00004": 1, "p-c00005": 1, "p-c00006": 2}
    assert DEFINITIONS_TTL_SECONDS <= 15


def test_a_new_event_name_in_a_new_version_is_heard_after_the_ttl(engine: Engine) -> None:
    """The interest is the union over versions: v2 exiting on a new event makes it relevant."""
    clock = Monotonic()
    service = cached_service(engine, clock)
    service.handle_detail("profile.changed", profile_changed("p-c00007", 1, event="Signed Up", created=True))
    doc = next(d for d in _examples() if d["id"] == "signup-coupon")
    engine.admin.apply(TENANT, {**doc, "exit": [*doc["exit"], {"event": "Unsubscribed"}]})
    clock.now += DEFINITIONS_TTL_SECONDS + 1
    service.handle_detail("profile.changed", profile_changed("p-c00008", 1, event="Signed Up", created=True))
    service.handle_detail("profile.changed", profile_changed("p-c00008", 2, event="Unsubscribed"))
    [e] = engine.repo.enrollments_of(TENANT, "p-c00008")
    assert (e.journey_version, e.exit_reason) == (2, "event:Unsubscribed")
    # The version-1 enrollment does not exit on it (its version has no such exit) but was read.
    service.handle_detail("profile.changed", profile_changed("p-c00007", 2, event="Unsubscribed"))
    [old] = engine.repo.enrollments_of(TENANT, "p-c00007")
    assert old.live


def _examples() -> list[dict[str, Any]]:
    from huiliu.journeys.examples import example_documents

    return example_documents()


def test_a_segment_no_journey_names_costs_no_dynamodb_call(engine: Engine) -> None:
    from tests.functions.journeys.engine_helpers import segment_event

    service = cached_service(engine, Monotonic())
    service.handle_detail("segment.entered", segment_event("entered", "p-c00009", "vip"))  # warm the cache
    before = calls(engine)
    assert (
        service.handle_detail("segment.entered", segment_event("entered", "p-c00009", "big_spenders")) is None
    )
    assert delta(before, calls(engine)) == {}
    # winback triggers on dormant_90_days: heard, enrolled.
    service.handle_detail("segment.entered", segment_event("entered", "p-c00009", "dormant_90_days"))
    [e] = engine.repo.enrollments_of(TENANT, "p-c00009")
    assert e.journey_id == "winback"
