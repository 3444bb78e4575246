"""The journeys engine on moto (JourneysTable as template.yaml declares it): the three classic
journeys, exactly-once under redelivery and overlapping ticks, pause/resume, erasure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.errors import ConditionFailed

from tests.functions.journeys.engine_helpers import Engine, make_engine, profile_changed, segment_event
from tests.unit.journeys.journey_helpers import TENANT


@pytest.fixture
def engine(deployed: Any) -> Engine:
    return make_engine(deployed.tables["JourneysTable"])


def test_signup_then_three_days_without_an_order_requests_the_coupon_sms(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-000001", 1, event="Signed Up", created=True))
    assert engine.tick(timedelta(days=2, hours=23)).stepped == 0
    report = engine.tick(timedelta(hours=1))
    assert report.stepped == 1
    assert report.lateness_seconds == [0.0]
    [sms] = engine.requested()
    assert sms["channel"] == "sms"
    assert sms["fallback"] == ["email"]
    assert sms["template_id"] == "coupon-sms"
    assert sms["journey_id"] == "signup-coupon"
    assert sms["idempotency_key"] == sms["event_id"]
    [tag] = engine.ingested()
    assert tag["source"] == {"connector": "journeys", "account": "signup-coupon"}
    assert tag["traits"] == {"tags": ["coupon-sent"]}
    assert tag["identifiers"] == [{"type": "phone", "value": "+8613800000001"}]
    funnel = engine.admin.funnel(TENANT, "signup-coupon")
    assert funnel["entered"] == 1
    assert funnel["messages_requested"] == 1
    assert {"step": "coupon", "reached": 1} in funnel["steps"]


def test_an_order_during_the_wait_exits_at_once_and_nothing_is_sent(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-000002", 1, event="Signed Up", created=True))
    engine.clock.advance(timedelta(days=1))
    engine.send(
        "profile.changed",
        profile_changed("p-000002", 2, event="Order Completed", properties={"order_id": "o1"}),
    )
    [e] = engine.repo.enrollments_of(TENANT, "p-000002", "signup-coupon")
    assert e.status == "exited"
    assert e.exit_reason == "event:Order Completed"
    assert e.next_at is None
    engine.tick(timedelta(days=5))
    assert engine.requested() == []
    funnel = engine.admin.funnel(TENANT, "signup-coupon")
    assert funnel["exited"] == {"event:Order Completed": 1}
    assert funnel["converted"] == 1


def test_bought_a_recommends_b_fifteen_days_later_once_per_order(engine: Engine) -> None:
    order = {"products": [{"product_id": "SKU-A", "price": 10}]}
    engine.send(
        "profile.changed",
        profile_changed("p-000003", 1, event="Order Completed", properties={**order, "order_id": "o1"}),
    )
    engine.clock.advance(timedelta(days=2))
    engine.send(
        "profile.changed",
        profile_changed("p-000003", 2, event="Order Completed", properties={**order, "order_id": "o2"}),
    )
    engine.send(
        "profile.changed",
        profile_changed(
            "p-000003",
            3,
            event="Order Completed",
            properties={"order_id": "o3", "products": [{"product_id": "SKU-C"}]},
        ),
    )
    assert len(engine.repo.enrollments_of(TENANT, "p-000003", "cross-sell-b")) == 2
    engine.tick(timedelta(days=13))
    assert [r["variables"]["order_id"] for r in engine.requested()] == ["o1"]
    engine.tick(timedelta(days=2))
    sent = engine.requested()
    assert [r["variables"]["order_id"] for r in sent] == ["o1", "o2"]
    assert {r["channel"] for r in sent} == {"wechat"}
    assert {tuple(r["fallback"]) for r in sent} == {("email",)}
    assert len({r["idempotency_key"] for r in sent}) == 2


def test_entering_dormant_sends_the_winback_but_a_backfill_entry_does_not(engine: Engine) -> None:
    engine.send(
        "segment.entered", segment_event("segment.entered", "p-000004", "dormant_90_days", backfill=True)
    )
    assert engine.requested() == []
    engine.send("segment.entered", segment_event("segment.entered", "p-000005", "dormant_90_days"))
    [email] = engine.requested()
    assert email["channel"] == "email"
    assert email["template_id"] == "winback-email"
    assert email["profile_id"] == "p-000005"


def test_a_redelivered_event_enrolls_and_acts_once(engine: Engine) -> None:
    detail = segment_event("segment.entered", "p-000006", "dormant_90_days")
    engine.send("segment.entered", detail)
    engine.send("segment.entered", detail)
    assert len(engine.repo.enrollments_of(TENANT, "p-000006")) == 1
    assert len(engine.requested()) == 1
    assert engine.admin.funnel(TENANT, "winback")["entered"] == 1


def overlapping_ticks(engine: Engine, people: list[str]) -> tuple[int, int, list[Engine]]:
    """Two tick invocations over the same due enrollments: while the first holds its pages (read,
    decided, published), the second reads, publishes and commits the same items; then the first
    commits. Returns (committed transitions, conflicts, the two tick engines)."""
    for pid in people:
        engine.send("profile.changed", profile_changed(pid, 1, event="Signed Up", created=True))
    engine.clock.advance(timedelta(days=3))
    now = engine.clock.now()
    first = make_engine(engine.repo.table_name, apply_examples=False, workers=1)
    second = make_engine(engine.repo.table_name, apply_examples=False, workers=1)
    reports: list[Any] = []
    real_commit = first.ticker.committer.commit

    def overlapped(pending: Any, at: Any, correlation: Any = None) -> Any:
        reports.append(second.ticker.tick(now))
        return real_commit(pending, at, correlation)

    first.ticker.committer.commit = overlapped  # type: ignore[method-assign]
    a = first.ticker.tick(now)
    committed = a.stepped + sum(r.stepped for r in reports)
    conflicts = a.conflicts + sum(r.conflicts for r in reports)
    return committed, conflicts, [first, second]


def assert_each_step_ran_once(engine: Engine, people: list[str], committed: int, ticks: list[Engine]) -> None:
    """Exactly once, from every side: one committed transition per enrollment; per (enrollment,
    step) exactly one action id on the bus (a republished copy carries the same id, which notify
    and identity dedupe); the funnel counted each step once; each decision log has one entry per
    action; every enrollment finished."""
    assert committed == len(people), f"{committed} transitions committed for {len(people)} due enrollments"
    published: dict[tuple[str, str], set[str]] = {}
    for tick in ticks:
        for detail in tick.requested():
            published.setdefault((detail["enrollment_id"], detail["step_id"]), set()).add(
                detail["idempotency_key"]
            )
        for detail in tick.ingested():
            j = detail["context"]["journey"]
            published.setdefault((j["enrollment_id"], j["step_id"]), set()).add(detail["message_id"])
    assert all(len(keys) == 1 for keys in published.values()), published
    assert sorted(step for _, step in published) == sorted(["coupon", "tag"] * len(people))
    funnel = engine.admin.funnel(TENANT, "signup-coupon")
    assert funnel["messages_requested"] == len(people)
    assert {"step": "coupon", "reached": len(people)} in funnel["steps"]
    assert funnel["completed"] == len(people)
    for pid in people:
        [e] = engine.repo.enrollments_of(TENANT, pid)
        assert e.status == "completed"
        actions = [line for line in e.log if line["what"].startswith("action ")]
        assert [line["step"] for line in actions] == ["coupon", "tag"], e.log
        assert e.rev == 2  # entered (1), stepped once (2)


def test_overlapping_ticks_step_each_enrollment_once_with_one_action_id(engine: Engine) -> None:
    people = [f"p-1000{i:02d}" for i in range(20)]
    committed, conflicts, ticks = overlapping_ticks(engine, people)
    # The second tick stepped everything; the first tick's commits of the page it held lost the race.
    assert conflicts >= 1
    assert_each_step_ran_once(engine, people, committed, ticks)


def test_the_exactly_once_check_catches_a_step_committed_twice(engine: Engine, monkeypatch: Any) -> None:
    """Without the revision condition on the commit, overlapping ticks step enrollments twice — and
    the check above fails. (It proves the check can fail, not only that it passes.)"""
    from huiliu.journeys.repository import JourneysRepository

    real_statement = JourneysRepository._replace_statement

    def unconditional(self: Any, item: Any, expected_rev: int) -> dict[str, Any]:
        statement = real_statement(self, item, expected_rev)
        assert statement["Statement"].endswith(' AND "rev"=?')
        return {
            "Statement": statement["Statement"].removesuffix(' AND "rev"=?'),
            "Parameters": statement["Parameters"][:-1],
        }

    monkeypatch.setattr(JourneysRepository, "_replace_statement", unconditional)
    people = [f"p-2000{i:02d}" for i in range(5)]
    committed, conflicts, ticks = overlapping_ticks(engine, people)
    monkeypatch.setattr(JourneysRepository, "_replace_statement", real_statement)
    assert conflicts == 0
    with pytest.raises(AssertionError):
        assert_each_step_ran_once(engine, people, committed, ticks)
    # The first tick's held page was committed a second time over the second tick's work.
    assert committed > len(people)
    assert engine.admin.funnel(TENANT, "signup-coupon")["messages_requested"] == committed


def test_a_crash_after_publishing_reruns_with_the_same_action_ids(engine: Engine, monkeypatch: Any) -> None:
    engine.send("profile.changed", profile_changed("p-000007", 1, event="Signed Up", created=True))
    engine.clock.advance(timedelta(days=3))
    calls = {"n": 0}
    real = engine.repo.save_enrollments

    def crash_once(*args: Any, **kwargs: Any) -> list[bool]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("crash after publish, before commit")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.repo, "save_enrollments", crash_once)
    with pytest.raises(RuntimeError):
        engine.ticker.tick(engine.clock.now())
    engine.ticker.tick(engine.clock.now())
    keys = [r["idempotency_key"] for r in engine.requested()]
    assert len(keys) == 2
    assert len(set(keys)) == 1
    [e] = engine.repo.enrollments_of(TENANT, "p-000007")
    assert e.status == "completed"


def test_pause_parks_due_waits_and_resume_brings_them_back(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-000008", 1, event="Signed Up", created=True))
    engine.admin.pause(TENANT, "signup-coupon")
    assert engine.tick(timedelta(days=3)).parked == 1
    assert engine.tick(timedelta(minutes=1)).due == 0
    assert engine.requested() == []
    engine.send("profile.changed", profile_changed("p-000009", 1, event="Signed Up", created=True))
    assert engine.repo.enrollments_of(TENANT, "p-000009") == []
    assert engine.admin.resume(TENANT, "signup-coupon")["resumed_waits"] == 1
    engine.tick(timedelta(minutes=1))
    assert len(engine.requested()) == 1


def test_a_new_version_leaves_running_enrollments_on_theirs(engine: Engine) -> None:
    from huiliu.journeys.examples import example_documents

    engine.send("profile.changed", profile_changed("p-000010", 1, event="Signed Up", created=True))
    doc = next(d for d in example_documents() if d["id"] == "signup-coupon")
    doc["steps"][2]["template"] = "winback-email"
    assert engine.admin.apply(TENANT, doc) == {
        "journey_id": "signup-coupon",
        "version": 2,
        "changed": True,
        "status": "active",
    }
    assert engine.admin.apply(TENANT, doc)["changed"] is False
    engine.send("profile.changed", profile_changed("p-000011", 1, event="Signed Up", created=True))
    engine.tick(timedelta(days=3))
    by_profile = {r["profile_id"]: (r["template_id"], r["journey_version"]) for r in engine.requested()}
    assert by_profile == {"p-000010": ("coupon-sms", 1), "p-000011": ("winback-email", 2)}


def test_archive_cancels_waiting_enrollments_when_they_come_due(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-000012", 1, event="Signed Up", created=True))
    engine.admin.archive(TENANT, "signup-coupon")
    engine.tick(timedelta(days=3))
    assert engine.requested() == []
    [e] = engine.repo.enrollments_of(TENANT, "p-000012")
    assert e.exit_reason == "archived"


def test_erasure_removes_the_person_from_journeys(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-000013", 1, event="Signed Up", created=True))
    assert engine.repo.load_person(TENANT, "p-000013")[1]
    engine.send(
        "profile.erased",
        {"tenant_id": TENANT, "profile_id": "p-000013", "profile_ids": ["p-000013"], "event_id": "x"},
    )
    assert engine.repo.load_person(TENANT, "p-000013") == (None, [])
    assert engine.tick(timedelta(days=3)).due == 0
    assert engine.admin.show(TENANT, "signup-coupon")["recent_enrollments"] == []


def test_a_conflicting_write_fails_the_record_for_redelivery(engine: Engine, monkeypatch: Any) -> None:
    engine.send("profile.changed", profile_changed("p-000014", 1, event="Signed Up", created=True))

    def lose(writes: Any) -> list[bool]:
        return [False] * len(writes)  # every statement: ConditionalCheckFailed (a lost race)

    monkeypatch.setattr(engine.repo, "save_enrollments", lose)
    with pytest.raises(ConditionFailed):
        engine.send(
            "profile.changed",
            profile_changed("p-000014", 2, event="Order Completed", properties={"order_id": "x"}),
        )


def test_merge_moves_live_enrollments_to_the_survivor(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-000015", 1, event="Signed Up", created=True))
    engine.send(
        "profile.merged",
        {
            "tenant_id": TENANT,
            "profile_id": "p-000016",
            "absorbed_id": "p-000015",
            "version": 3,
            "event_id": "m1",
        },
    )
    [old] = engine.repo.enrollments_of(TENANT, "p-000015")
    [moved] = engine.repo.enrollments_of(TENANT, "p-000016")
    assert old.exit_reason == "merged_into:p-000016"
    assert moved.enrollment_id == old.enrollment_id
    engine.tick(timedelta(days=3))
    assert [r["profile_id"] for r in engine.requested()] == ["p-000016"]
