"""Hypothesis: SQS does not keep order and delivers at least once. Whatever the delivery order and
however many duplicates, a profile ends with the same memberships, the same occurrence log and the
same kept snapshot as in-order delivery — and the counts read from the tenant index agree.

Generated traits never revert to an earlier value (A -> B -> A): a newer snapshot that equals the
kept one in every field segments read is not written, so a late older one in between cannot be
recognised as stale (docs/segments.md, "Limits").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.segments.segments_helpers import T0, TENANT, Person, World, seg

SEGMENTS = [
    seg("recent_buyers", {"event": "Order Completed", "within": "P30D"}),
    seg("twice_in_30d", {"event": "Order Completed", "within": "P30D", "count": {"gte": 2}}),
    seg(
        "spent_300_in_30d",
        {"event": "Order Completed", "within": "P30D", "sum": {"property": "revenue", "gte": 300}},
    ),
    seg("shanghai", {"trait": "city", "in": ["c1", "c3", "c5"]}),
    seg("shanghai_buyers", {"all": [{"segment": "shanghai"}, {"segment": "recent_buyers"}]}),
    seg("tagged", {"tag": "vip"}),
    seg("active", {"lifecycle": ["new", "active", "repeat"]}),
]

step = st.one_of(
    st.tuples(st.just("order"), st.integers(0, 59), st.sampled_from([50, 100, 200])),
    st.tuples(st.just("city"), st.just(0), st.just(0)),
    st.tuples(st.just("tag"), st.just(0), st.just(0)),
    st.tuples(st.just("view"), st.integers(0, 59), st.just(0)),
)


def _events(steps: list[tuple[str, int, int]]) -> list[Any]:
    person = Person()
    events = []
    cities = 0
    for kind, day, amount in steps:
        if kind == "order":
            events.append(person.track("Order Completed", T0 + timedelta(days=day), revenue=amount))
        elif kind == "view":
            events.append(person.track("Page Viewed", T0 + timedelta(days=day)))
        elif kind == "city":
            cities += 1
            events.append(person.set(city=f"c{cities}"))
        else:
            events.append(person.tag("vip"))
    return events


def _final(events: list[Any]) -> tuple[Any, ...]:
    world = World(T0 + timedelta(days=60))
    world.define(*SEGMENTS)
    for event in events:
        world.send(event)
    state = world.store.get_states(TENANT, ["p1"])["p1"][0]
    counts = {s["id"]: world.store.count(TENANT, s["id"]) for s in SEGMENTS}
    members = {s["id"] for s in SEGMENTS if "p1" in world.members(s["id"])}
    log = dict(state.log)
    return sorted(state.members), members, counts, log, state.snapshot, state.due


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=12), data=st.data())
def test_any_delivery_order_with_duplicates_ends_like_in_order_delivery(steps: list[Any], data: Any) -> None:
    events = _events(steps)
    expected = _final(events)
    delivered = data.draw(st.permutations(events))
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=4))
    shuffled = data.draw(st.permutations([*delivered, *duplicates]))
    got = _final(shuffled)
    assert got == expected
    members, counts = got[1], got[2]
    assert all(counts[sid] == (1 if sid in members else 0) for sid in counts)
