"""The segments stage on profile events and on the sweep (in-memory store, manual clock)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.contracts import ProfileErased, ProfileMerged, ReplayCompleted, derive_event_id

from tests.unit.segments.segments_helpers import T0, TENANT, Person, World, iso, kinds, seg

RECENT = seg("recent_buyers", {"event": "Order Completed", "within": "P30D"})
TWICE = seg("twice_in_30d", {"event": "Order Completed", "within": "P30D", "count": {"gte": 2}})
VIP = seg("vip", {"computed": "revenue_total", "gte": 1000})
SHANGHAI = seg("shanghai", {"trait": "city", "eq": "上海"})


def test_an_order_enters_the_recent_buyers_segment_with_the_profile() -> None:
    world = World()
    world.define(RECENT)
    out = world.send(Person().track("Order Completed", T0, revenue=99))
    assert kinds(out) == [("segment.entered", "recent_buyers", "conditions")]
    assert out[0].profile is not None
    assert out[0].profile.version == 1
    assert out[0].segment_version == 1
    assert world.members("recent_buyers") == {"p1"}
    assert world.store.count(TENANT, "recent_buyers") == 1


def test_a_membership_change_is_one_conditional_put_of_the_state_and_no_transaction() -> None:
    world = World()
    world.define(RECENT, TWICE, VIP, SHANGHAI)
    person = Person()
    world.send(person.track("Order Completed", T0, revenue=600))
    world.service.cache_seconds = 3600  # a warm container holds the compiled plan
    before = dict(world.store.stats.by_op)
    out = world.send(person.track("Order Completed", T0 + timedelta(days=1), revenue=600))
    assert sorted(kinds(out)) == [
        ("segment.entered", "twice_in_30d", "conditions"),
        ("segment.entered", "vip", "conditions"),
    ]
    spent = {op: n - before.get(op, 0) for op, n in world.store.stats.by_op.items() if n != before.get(op, 0)}
    assert spent == {"BatchGetItem": 1, "PutItem": 1}  # read the state, write it back
    assert world.store.counts(TENANT) == {"recent_buyers": 1, "twice_in_30d": 1, "vip": 1}


def test_members_are_listed_page_by_page_from_the_tenant_index_with_when_they_entered() -> None:
    world = World()
    world.define(SHANGHAI)
    inside = set()
    people = {f"p{n:02d}": Person(f"p{n:02d}") for n in range(40)}
    for n, person in enumerate(people.values()):
        city = "上海" if n % 3 else "北京"
        world.send(person.set(city=city))
        if city == "上海":
            inside.add(f"p{n:02d}")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = world.store.members(TENANT, "shanghai", limit=7, cursor=cursor)
        assert len(page) <= 7
        seen += page
        if cursor is None:
            break
    assert sorted(m["profile_id"] for m in seen) == sorted(inside)  # each once, none missed
    assert {(m["segment_version"], m["entered_at"], m["backfill"]) for m in seen} == {(1, iso(T0), False)}
    assert world.store.count(TENANT, "shanghai") == len(inside)
    world.send(people["p01"].set(city="北京"))  # leaves
    assert world.store.count(TENANT, "shanghai") == len(inside) - 1


def test_a_stale_profile_changed_after_a_newer_one_changes_nothing() -> None:
    world = World()
    world.define(SHANGHAI)
    person = Person()
    old = person.set(city="上海")
    new = person.set(city="北京")
    assert world.send(new) == []
    state_before = world.store.get_states(TENANT, ["p1"])["p1"]
    writes_before = world.store.stats.writes
    assert world.send(old) == []
    assert world.store.get_states(TENANT, ["p1"])["p1"] == state_before
    assert world.store.stats.writes == writes_before
    assert world.members("shanghai") == set()
    assert world.service.metrics.dropped_stale == 1


def test_a_redelivered_event_republishes_the_same_event_ids_without_writing() -> None:
    world = World()
    world.define(RECENT)
    event = Person().track("Order Completed", T0)
    first = world.send(event)
    writes = world.store.stats.writes
    again = world.send(event)
    assert [e.event_id for e in again] == [e.event_id for e in first]
    assert world.store.stats.writes == writes


def test_an_event_no_segment_reads_costs_no_read_and_no_write() -> None:
    world = World()
    world.define(VIP, SHANGHAI)
    person = Person()
    world.send(person.set(city="杭州"))
    reads, writes = world.store.stats.reads, world.store.stats.writes
    world.send(person.track("Page Viewed", T0))
    assert world.store.stats.writes == writes
    assert world.store.stats.reads == reads + 1  # the definitions only (cache off): the state is not read
    assert world.service.metrics.skipped == 1
    # a field segments keep (tags always are) is read and written, though no segment reads it
    world.send(person.tag("newsletter"))
    assert (world.store.stats.reads, world.store.stats.writes) == (reads + 3, writes + 1)
    assert world.store.get_states(TENANT, ["p1"])["p1"][0].snapshot["tags"] == ["newsletter"]


def test_skipping_unread_events_never_changes_the_outcome_whatever_the_delivery_order() -> None:
    def final(events: list[Any]) -> Any:
        world = World(T0 + timedelta(days=2))
        world.define(VIP, SHANGHAI, TWICE)
        for event in events:
            world.send(event)
        state = world.store.get_states(TENANT, ["p1"])["p1"][0]
        return state.snapshot, state.members, state.log, world.service.metrics.skipped

    person = Person()
    events = [
        person.set(city="上海"),
        person.track("Page Viewed", T0),
        person.track("Order Completed", T0, revenue=700),
        person.track("Page Viewed", T0 + timedelta(hours=1)),
        person.set(plan="gold"),  # no segment reads plan: skipped
        person.track("Order Completed", T0 + timedelta(days=1), revenue=400),
        person.track("Page Viewed", T0 + timedelta(days=1)),
    ]
    expected = final(events)
    assert expected[3] == 4
    assert final(list(reversed(events)))[:3] == expected[:3]
    assert final([events[i] for i in (2, 0, 6, 5, 1, 4, 3)])[:3] == expected[:3]


def test_only_segments_the_changed_fields_can_touch_are_evaluated() -> None:
    world = World()
    world.define(*[seg(f"city_{i}", {"trait": "city", "eq": f"c{i}"}) for i in range(25)])
    world.define(*[seg(f"plan_{i}", {"trait": "plan", "eq": f"p{i}"}) for i in range(25)])
    person = Person()
    world.send(person.set(city="c1"))  # first sight: every segment
    before = world.service.metrics.evaluated
    world.send(person.set(plan="p3"))
    assert world.service.metrics.evaluated - before == 25
    assert world.members("plan_3") == {"p1"}
    assert world.members("city_1") == {"p1"}


def test_the_sweep_ends_ordered_in_last_30_days_on_day_31_without_a_new_event() -> None:
    world = World()
    world.define(RECENT)
    world.send(Person().track("Order Completed", T0))
    world.send(Person("p2").set(city="x"))  # never ordered: never due
    assert world.advance(29) == []
    out = world.advance(2)
    assert kinds(out) == [("segment.exited", "recent_buyers", "time")]
    assert world.members("recent_buyers") == set()
    assert world.store.count(TENANT, "recent_buyers") == 0
    assert world.service.metrics.swept == 1  # exactly the due profile, no scan
    assert world.advance(30) == []


def test_windowed_counts_come_from_the_occurrence_log_and_expire_exactly() -> None:
    world = World()
    world.define(TWICE)
    person = Person()
    world.send(person.track("Order Completed", T0))
    out = world.send(person.track("Order Completed", T0 + timedelta(days=10)))
    assert kinds(out) == [("segment.entered", "twice_in_30d", "conditions")]
    state = world.store.get_states(TENANT, ["p1"])["p1"][0]
    assert state.due == (T0 + timedelta(days=30)).timestamp()  # the first order leaves the window
    world.clock.set(T0 + timedelta(days=30) - timedelta(seconds=1))
    assert world.service.tick(world.clock.now()) == []
    world.clock.set(T0 + timedelta(days=30))
    assert kinds(list(world.service.tick(world.clock.now()))) == [("segment.exited", "twice_in_30d", "time")]


def test_a_late_older_event_still_counts_in_the_window_but_not_its_snapshot() -> None:
    world = World()
    world.define(TWICE)
    person = Person()
    first = person.track("Order Completed", T0)
    second = person.track("Order Completed", T0 + timedelta(days=1))
    assert world.send(second) == []  # its log holds one order
    out = world.send(first)  # stale snapshot, but its order was never logged
    assert kinds(out) == [("segment.entered", "twice_in_30d", "conditions")]
    assert world.store.get_states(TENANT, ["p1"])["p1"][0].version == 2


def test_a_segment_using_another_is_re_evaluated_when_that_one_changes() -> None:
    world = World()
    world.define(SHANGHAI, seg("shanghai_vip", {"all": [{"segment": "shanghai"}, {"tag": "vip"}]}))
    person = Person()
    world.send(person.tag("vip"))
    out = world.send(person.set(city="上海"))
    assert kinds(out) == [
        ("segment.entered", "shanghai", "conditions"),
        ("segment.entered", "shanghai_vip", "conditions"),
    ]


def test_a_merge_ends_the_absorbed_profiles_memberships_and_folds_its_log() -> None:
    world = World()
    world.define(TWICE, RECENT)
    survivor, absorbed = Person("p1"), Person("p2")
    world.send(survivor.track("Order Completed", T0))
    world.send(absorbed.track("Order Completed", T0 + timedelta(days=1)))
    out = world.send(
        ProfileMerged(
            event_id="merge-1",
            tenant_id=TENANT,
            occurred_at=iso(T0),
            profile_id="p1",
            version=2,
            absorbed_id="p2",
            merge_id="m1",
        )
    )
    assert kinds(out) == [("segment.exited", "recent_buyers", "merge")]
    assert world.members("recent_buyers") == {"p1"}
    survivor.computed["events"]["Order Completed"]["count"] = 2
    merged = survivor._changed({"computed": {"order_count": 2}}, None, merged_from=["p2"])
    out = world.send(merged)
    assert kinds(out) == [("segment.entered", "twice_in_30d", "conditions")]
    assert world.store.get_states(TENANT, ["p2"]) == {}


def test_erasure_deletes_memberships_state_and_counts() -> None:
    world = World()
    world.define(RECENT)
    world.send(Person().track("Order Completed", T0))
    out = world.send(
        ProfileErased(
            event_id="erase-1", tenant_id=TENANT, occurred_at=iso(T0), profile_id="p1", profile_ids=["p1"]
        )
    )
    assert kinds(out) == [("segment.exited", "recent_buyers", "erase")]
    assert world.store.get_states(TENANT, ["p1"]) == {}
    assert world.members("recent_buyers") == set()
    assert world.store.count(TENANT, "recent_buyers") == 0


def test_backfill_replays_enter_marked_as_backfill_and_progress_is_counted() -> None:
    world = World()
    person = Person()
    world.send(person.set(city="上海"))  # seen before the segment existed
    result = world.define(SHANGHAI)
    [request] = result.events
    replay_id = request.replay_id
    replayed = person.snapshot()
    from huiliu.contracts import ProfileChanged

    out = world.send(
        ProfileChanged(
            event_id=derive_event_id(replay_id, "p1"),
            tenant_id=TENANT,
            occurred_at=iso(T0),
            profile_id="p1",
            version=replayed.version,
            profile=replayed,
            replay=True,
            replay_id=replay_id,
        )
    )
    assert [(e.segment_id, e.backfill) for e in out] == [("shanghai", True)]
    world.send(
        ReplayCompleted(
            event_id="done",
            tenant_id=TENANT,
            occurred_at=iso(T0),
            replay_id=replay_id,
            requester="x",
            profiles=1,
        )
    )
    [progress] = world.store.progress(TENANT)
    assert progress["status"] == "completed"
    assert (progress["evaluated"], progress["entered"], progress["profiles"]) == (1, 1, 1)


def test_editing_a_segment_re_evaluates_a_profile_on_its_next_event() -> None:
    world = World()
    world.define(seg("big", {"computed": "revenue_total", "gte": 500}))
    person = Person()
    world.send(person.track("Order Completed", T0, revenue=300))
    world.define(seg("big", {"computed": "revenue_total", "gte": 200}))
    out = world.send(person.tag("x"))  # (an event touching nothing kept waits for the backfill's replay)
    assert [(e.segment_id, e.segment_version) for e in out] == [("big", 2)]


def test_the_sweep_publishes_before_committing_so_a_failed_publish_is_retried_with_the_same_ids() -> None:
    from huiliu.bus import MemoryPublisher
    from huiliu.segments.service import SegmentsService

    class Flaky(MemoryPublisher):
        fail = True

        def publish(self, events: list[Any]) -> int:
            if self.fail:
                self.fail = False
                raise RuntimeError("PutEvents failed")
            return super().publish(events)

    world = World()
    world.define(RECENT)
    world.send(Person().track("Order Completed", T0))
    publisher = Flaky()
    sweeper = SegmentsService(world.store, clock=world.clock, cache_seconds=0, sweep_publisher=publisher)
    now = world.clock.advance(timedelta(days=31))
    with pytest.raises(RuntimeError):
        sweeper.tick(now)
    assert world.members("recent_buyers") == {"p1"}  # nothing committed
    assert sweeper.tick(now) == []  # published by the sweeper itself
    assert [e.detail_type for e in publisher.events] == ["segment.exited"]
    assert world.members("recent_buyers") == set()
    assert sweeper.tick(now) == []
    assert len(publisher.events) == 1


def test_the_sweep_recomputes_rfm_breakpoints_from_histograms_and_backfills() -> None:
    world = World(T0 + timedelta(days=100))
    world.define(seg("champions", {"rfm": "champions"}))
    for n in range(30):
        person = Person(f"p{n}")
        for k in range(n % 6 + 1):
            world.send(person.track("Order Completed", T0 + timedelta(days=3 * n + k), revenue=50 * (n + 1)))
    histogram = world.service.rfm_histogram(TENANT)
    assert sum(v for k, v in histogram.items() if k.startswith("f_")) == 30  # one cell per buyer
    out = world.service.refresh_rfm(TENANT, world.clock.now().timestamp())
    assert [e.DETAIL_TYPE for e in out] == ["profiles.replay_requested"]
    models = world.admin.models(TENANT)["rfm"]
    assert models["profiles"] == 30
    assert models["computed_at"] is not None
    assert models["frequency"] != [1, 2, 3, 5]  # the defaults were replaced by the tenant's quantiles
    world.service._rfm_checked.clear()
    assert world.service.refresh_rfm(TENANT, world.clock.now().timestamp()) == []  # fresh for a day
    # erasing a buyer takes them out of the histogram
    world.send(
        ProfileErased(
            event_id="e", tenant_id=TENANT, occurred_at=iso(T0), profile_id="p0", profile_ids=["p0"]
        )
    )
    histogram = world.service.rfm_histogram(TENANT)
    assert sum(v for k, v in histogram.items() if k.startswith("f_")) == 29


def test_an_unmerged_profile_starts_afresh_from_its_tombstone() -> None:
    world = World()
    world.define(RECENT, SHANGHAI)
    survivor, absorbed = Person("p1"), Person("p2")
    world.send(survivor.set(city="北京"))
    world.send(absorbed.track("Order Completed", T0))
    world.send(
        ProfileMerged(
            event_id="m1",
            tenant_id=TENANT,
            occurred_at=iso(T0),
            profile_id="p1",
            version=2,
            absorbed_id="p2",
            merge_id="m",
        )
    )
    assert world.members("recent_buyers") == set()
    assert world.store.get_states(TENANT, ["p2"])["p2"][0].merged_into == "p1"
    # identity restores p2 (its own snapshot, a new version) and emits profile.changed for it
    absorbed.version += 5
    restored = absorbed.set(city="上海")
    out = world.send(restored)
    assert sorted(kinds(out)) == [
        ("segment.entered", "recent_buyers", "conditions"),
        ("segment.entered", "shanghai", "conditions"),
    ]
    assert world.store.get_states(TENANT, ["p2"])["p2"][0].merged_into is None


def test_a_tenant_without_segments_costs_no_dynamodb_call_per_event() -> None:
    world = World()
    world.service.plan(TENANT)
    world.service.cache_seconds = 3600
    before = (world.store.stats.reads, world.store.stats.writes)
    assert world.send(Person().track("Order Completed", T0)) == []
    assert (world.store.stats.reads, world.store.stats.writes) == before
