"""Exactly once under redelivery, crashes and overlapping ticks (hypothesis, JourneysTable on moto).

Any interleaving of event deliveries (each possibly redelivered), ticks at random times, ticks that
overlap a second tick, and crashes after publishing (before the commit) or after the commit (before
the counters) ends — once everything is delivered and ticked without faults — with:

- every person in exactly one enrollment, finished (nothing lost, nothing enrolled twice);
- no (enrollment, step) ever published under two idempotency keys (no duplicate action);
- a person who ordered during the wait never sent a coupon; everyone else sent exactly coupon + tag;
- funnel counters never above the truth (counted at most once).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import timedelta
from typing import Any

from huiliu.bus import MemoryPublisher
from huiliu.clock import ManualClock
from huiliu.journeys.examples import example_documents
from huiliu.journeys.repository import JourneysRepository
from huiliu.journeys.service import Definitions, JourneysService, JourneyTicker
from huiliu_infra.local import moto_fast
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.functions.journeys.engine_helpers import profile_changed
from tests.unit.journeys.journey_helpers import T0, TENANT

TABLE = "journeys-prop"
PEOPLE = 5


class Crash(RuntimeError):
    pass


class FaultyRepo(JourneysRepository):
    """Crashes on the save calls whose numbers are in ``before`` / ``after``."""

    def __init__(self, table: str, before: set[int], after: set[int]) -> None:
        super().__init__(table)
        self.before, self.after, self.calls = before, after, 0

    def _roll(self) -> int:
        self.calls += 1
        if self.calls in self.before:
            raise Crash("before commit")
        return self.calls

    def save_enrollment(self, e: Any, *, expected_rev: int | None, parked: str | None = None) -> None:
        n = self._roll()
        super().save_enrollment(e, expected_rev=expected_rev, parked=parked)
        if n in self.after:
            raise Crash("after commit")

    def save_enrollments(self, writes: Any) -> list[bool]:
        """A batch request crashes before it is sent or after DynamoDB answered (all of it)."""
        n = self._roll()
        done = super().save_enrollments(writes)
        if n in self.after:
            raise Crash("after commit")
        return done


def _create_table() -> None:
    import boto3

    boto3.client("dynamodb", region_name="ap-east-1").create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "due_shard", "next_at")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "due",
                "KeySchema": [
                    {"AttributeName": "due_shard", "KeyType": "HASH"},
                    {"AttributeName": "next_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


step = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 2 * PEOPLE - 1)),
    st.tuples(st.just("tick"), st.integers(0, 3 * 24 * 60 + 30), st.booleans()),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(step, min_size=4, max_size=25),
    crash_before=st.sets(st.integers(1, 30), max_size=4),
    crash_after=st.sets(st.integers(1, 30), max_size=4),
    buyers=st.sets(st.integers(0, PEOPLE - 1), max_size=PEOPLE),
)
def test_any_interleaving_of_faults_acts_exactly_once(
    plan: list[tuple[Any, ...]], crash_before: set[int], crash_after: set[int], buyers: set[int]
) -> None:
    moto_fast.install()  # PartiQL batch updates as DynamoDB runs them (the emulator's shim)
    with mock_aws():
        _create_table()
        run(plan, crash_before, crash_after, buyers)


def run(plan: list[tuple[Any, ...]], crash_before: set[int], crash_after: set[int], buyers: set[int]) -> None:
    bus = MemoryPublisher()
    clock = ManualClock(T0)
    faulty = FaultyRepo(TABLE, crash_before, crash_after)
    clean = JourneysRepository(TABLE)
    doc = next(d for d in example_documents() if d["id"] == "signup-coupon")
    from huiliu.journeys.admin import JourneyAdmin

    JourneyAdmin(clean, clock=clock).apply(TENANT, doc)
    service = JourneysService(faulty, bus, clock=clock, definitions=Definitions(faulty, cache_seconds=0))
    tickers = [
        JourneyTicker(
            FaultyRepo(TABLE, crash_before, crash_after), bus, definitions=Definitions(clean), workers=1
        )
        for _ in range(2)
    ]
    # Orders come at least a day after sign-up and before the 3-day wait ends (the journey's story).
    events = [
        profile_changed(f"p-{i:06d}", 1, event="Signed Up", created=True, event_id=f"su-{i}")
        for i in range(PEOPLE)
    ]
    events += [
        profile_changed(
            f"p-{i:06d}", 2, event="Order Completed", event_id=f"oc-{i}", properties={"order_id": f"o{i}"}
        )
        for i in range(PEOPLE)
    ]
    delivered: set[int] = set()
    signed_up: set[int] = set()

    def deliver(k: int) -> None:
        person = k % PEOPLE
        if k >= PEOPLE and (person not in buyers or person not in signed_up):
            return  # only buyers order, and only after signing up
        try:
            service.handle_detail("profile.changed", events[k])
        except Crash:
            return  # SQS will deliver it again
        delivered.add(k)
        if k < PEOPLE:
            signed_up.add(person)

    def tick(overlap: bool) -> None:
        first, second = tickers
        if overlap:
            real = first.committer.commit

            def overlapped(pending: Any, at: Any, correlation: Any = None) -> Any:
                with contextlib.suppress(Crash):
                    second.tick(at)
                return real(pending, at, correlation)

            first.committer.commit = overlapped  # type: ignore[method-assign]
        try:
            first.tick(clock.now())
        except Crash:
            pass
        finally:
            first.committer.__dict__.pop("commit", None)

    for action in plan:
        if action[0] == "deliver":
            k = action[1]
            # a buyer's order arrives during the wait: at least one minute before it ends
            if k >= PEOPLE and clock.now() >= T0 + timedelta(days=3) - timedelta(minutes=1):
                continue
            deliver(k)
        else:
            minutes = action[1]
            target = T0 + timedelta(minutes=minutes)
            if target > clock.now():
                clock.set(target)
            tick(action[2])
    # Heal: everything not yet delivered arrives (signups first, orders while still in the wait if
    # possible), then faultless ticks well after every wait.
    faulty.before, faulty.after = set(), set()
    for t in tickers:
        t.repo.before, t.repo.after = set(), set()  # type: ignore[attr-defined]
    for k in range(PEOPLE):
        if k not in delivered:
            deliver(k)
    for person in buyers:
        if PEOPLE + person not in delivered and clock.now() < T0 + timedelta(days=3) - timedelta(minutes=1):
            deliver(PEOPLE + person)
    clock.set(max(clock.now(), T0) + timedelta(days=4))
    tickers[0].tick(clock.now())

    keys: set[tuple[str, str, str]] = set()
    for e in bus.events:
        d = e.detail
        if e.detail_type == "notification.requested":
            keys.add((d["enrollment_id"], d["step_id"], d["idempotency_key"]))
        else:
            keys.add(
                (
                    d["context"]["journey"]["enrollment_id"],
                    d["context"]["journey"]["step_id"],
                    d["message_id"],
                )
            )
    per_step = Counter((who, s) for who, s, _ in keys)
    assert all(c == 1 for c in per_step.values()), per_step  # never two keys for one step
    completed = 0
    for person in range(PEOPLE):
        enrollments = clean.enrollments_of(TENANT, f"p-{person:06d}")
        assert len(enrollments) == 1  # nothing enrolled twice, nothing lost
        [e] = enrollments
        assert not e.live
        steps = {s for who, s, _ in keys if who == e.enrollment_id}
        if e.exit_reason == "event:Order Completed":
            assert person in buyers
            assert steps == set()  # left during the wait: no coupon, no tag
        else:
            assert e.exit_reason == "end"
            assert steps == {"coupon", "tag"}
            completed += 1
    funnel = clean.funnel(TENANT, "signup-coupon")
    assert funnel.get("entered", 0) <= PEOPLE
    assert funnel.get("messages", 0) <= completed
