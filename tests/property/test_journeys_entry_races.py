"""Entry decisions that look at more than one enrollment — the per-order instance bound and "at most
once per period" — hold when events of one person are processed at the same instant (hypothesis,
JourneysTable on moto).

Concurrency is modelled exactly: every event of a "simultaneous" group decides from the same read
of the person (taken before any of them wrote), then they write in a random order; an event whose
write loses (ConditionFailed) is redelivered later, as SQS would, and decides again from a fresh
read. Whatever the group sizes and orders:

- never more live instances than ``max_concurrent``, and exactly ``min(orders, max_concurrent)``
  enrolled (no order lost below the bound);
- once per period: exactly one enrollment per period, however many triggers arrived together.
"""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from typing import Any

from huiliu.bus import MemoryPublisher
from huiliu.clock import ManualClock
from huiliu.errors import ConditionFailed
from huiliu.journeys.admin import JourneyAdmin
from huiliu.journeys.definition import Catalog
from huiliu.journeys.repository import JourneysRepository
from huiliu.journeys.service import Definitions, JourneysService
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.functions.journeys.engine_helpers import profile_changed
from tests.property.test_journeys_exactly_once import TABLE, _create_table
from tests.unit.journeys.journey_helpers import T0, TENANT

PERSON = "p-race01"


class StaleRepo(JourneysRepository):
    """Answers load_partition with a read taken earlier (the simultaneous events' shared view)."""

    def __init__(self, table: str, frozen: Any) -> None:
        super().__init__(table)
        self.frozen = frozen

    def load_partition(self, tenant: str, profile_id: str) -> Any:
        return copy.deepcopy(self.frozen)


def per_order(bound: int) -> dict[str, Any]:
    return {
        "id": "per-order",
        "trigger": {"event": "Order Completed"},
        "entry": {"policy": "every_time"},
        "instance": {"key": "order_id", "max_concurrent": bound},
        "steps": [
            {"id": "wait", "type": "wait", "duration": "15d"},
            {"id": "tag", "type": "tag", "add": ["x"]},
        ],
    }


def once_a_month() -> dict[str, Any]:
    return {
        "id": "monthly",
        "trigger": {"event": "Cart Abandoned"},
        "entry": {"policy": "once_per_period", "period": "30d"},
        "steps": [
            {"id": "wait", "type": "wait", "duration": "1d"},
            {"id": "tag", "type": "tag", "add": ["y"]},
        ],
    }


def run_groups(
    doc: dict[str, Any], events: list[dict[str, Any]], groups: list[int], seed: int
) -> JourneysRepository:
    """Process ``events`` in simultaneous groups of the given sizes; losers are redelivered."""
    clean = JourneysRepository(TABLE)
    clock = ManualClock(T0)
    JourneyAdmin(clean, lambda t: Catalog(), clock).apply(TENANT, doc)
    bus = MemoryPublisher()
    fresh = JourneysService(clean, bus, clock=clock, definitions=Definitions(clean, cache_seconds=0))
    rng = random.Random(seed)
    queue = list(events)
    redeliver: list[dict[str, Any]] = []
    sizes = iter(groups)
    while queue:
        size = max(1, next(sizes, 1))
        group, queue = queue[:size], queue[size:]
        stale = StaleRepo(TABLE, clean.load_partition(TENANT, PERSON))
        service = JourneysService(stale, bus, clock=clock, definitions=Definitions(clean, cache_seconds=0))
        rng.shuffle(group)
        for detail in group:
            try:
                service.handle_detail("profile.changed", detail)
            except ConditionFailed:
                redeliver.append(detail)
    for detail in redeliver:  # SQS delivers the losers again; they decide from a fresh read
        fresh.handle_detail("profile.changed", detail)
    return clean


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bound=st.integers(1, 3),
    orders=st.integers(1, 6),
    groups=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    seed=st.integers(0, 1000),
)
def test_simultaneous_orders_never_exceed_the_instance_bound(
    bound: int, orders: int, groups: list[int], seed: int
) -> None:
    with mock_aws():
        _create_table()
        events = [
            profile_changed(
                PERSON, 1 + i, event="Order Completed", properties={"order_id": f"o{i}"}, event_id=f"oc-{i}"
            )
            for i in range(orders)
        ]
        repo = run_groups(per_order(bound), events, groups, seed)
        live = [e for e in repo.enrollments_of(TENANT, PERSON, "per-order") if e.live]
        assert len(live) == min(orders, bound)
        assert len({e.instance for e in live}) == len(live)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    triggers=st.integers(2, 5),
    groups=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    seed=st.integers(0, 1000),
)
def test_simultaneous_triggers_enter_once_per_period(triggers: int, groups: list[int], seed: int) -> None:
    with mock_aws():
        _create_table()
        events = [
            profile_changed(PERSON, 1 + i, event="Cart Abandoned", event_id=f"ca-{i}")
            for i in range(triggers)
        ]
        repo = run_groups(once_a_month(), events, groups, seed)
        assert len(repo.enrollments_of(TENANT, PERSON, "monthly")) == 1


def test_two_orders_decided_from_one_read_the_second_loses_and_is_then_refused() -> None:
    """The race itself, step by step: bound 1, two orders decided from the same read."""
    with mock_aws():
        _create_table()
        clean = JourneysRepository(TABLE)
        clock = ManualClock(T0)
        JourneyAdmin(clean, lambda t: Catalog(), clock).apply(TENANT, per_order(1))
        bus = MemoryPublisher()
        stale = StaleRepo(TABLE, clean.load_partition(TENANT, PERSON))
        racing = JourneysService(stale, bus, clock=clock, definitions=Definitions(clean, cache_seconds=0))
        first = profile_changed(PERSON, 1, event="Order Completed", properties={"order_id": "o1"})
        second = profile_changed(PERSON, 2, event="Order Completed", properties={"order_id": "o2"})
        racing.handle_detail("profile.changed", first)
        try:
            racing.handle_detail("profile.changed", second)
            raise AssertionError("the second order entered from a stale read: the bound was not enforced")
        except ConditionFailed:
            pass
        fresh = JourneysService(clean, bus, clock=clock, definitions=Definitions(clean, cache_seconds=0))
        fresh.handle_detail("profile.changed", second)  # the redelivery: refused by the bound
        clock.advance(timedelta(minutes=1))
        [e] = clean.enrollments_of(TENANT, PERSON, "per-order")
        assert e.instance == "o1"
