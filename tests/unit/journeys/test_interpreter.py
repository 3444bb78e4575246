"""The pure step interpreter: no AWS, the clock is a parameter."""

from __future__ import annotations

from datetime import timedelta

from huiliu.journeys.interpreter import (
    COMPLETED,
    EXITED,
    Env,
    EventInfo,
    ProfileView,
    enroll,
    enrollment_key,
    iso,
    next_local_time,
    on_due,
    on_event,
    on_segment,
)

from tests.unit.journeys.journey_helpers import T0, TENANT, example, journey

ENV = Env(tenant_timezone="Asia/Shanghai")


def _start(j, profile=None, *, instance=None, trigger_id="ev-1", props=None, now=T0):
    profile = profile or ProfileView("p1")
    key = enrollment_key(j, trigger_id, instance)
    trig = {"kind": "event", "event_id": trigger_id, "properties": props or {}}
    return enroll(j, TENANT, profile, trigger=trig, key=key, instance=instance, now=now, env=ENV)


def test_signup_waits_three_days_then_sends_the_coupon_when_no_order_came() -> None:
    j = example("signup-coupon")
    tr = _start(j)
    e = tr.enrollment
    assert tr.actions == []
    assert e.step_id == "wait-3d"
    assert e.next_at == iso(T0 + timedelta(days=3))
    assert on_due(j, e, ProfileView("p1"), T0 + timedelta(days=2, hours=23), ENV) is None
    done = on_due(j, e, ProfileView("p1"), T0 + timedelta(days=3), ENV)
    assert done is not None
    kinds = [(a.kind, a.step_id) for a in done.actions]
    assert kinds == [("send", "coupon"), ("tag", "tag")]
    assert done.actions[0].params["channel"] == "sms"
    assert done.actions[0].params["fallback"] == ["email"]
    assert done.enrollment.status == COMPLETED
    assert done.enrollment.next_at is None
    assert "messages" in done.counters
    assert "reached:coupon" in done.counters


def test_an_order_during_the_wait_exits_at_once_and_cancels_the_wait() -> None:
    j = example("signup-coupon")
    e = _start(j).enrollment
    order = EventInfo("ev-2", "Order Completed", {"order_id": "o1"})
    tr = on_event(j, e, ProfileView("p1"), order, T0 + timedelta(hours=5), ENV)
    assert tr is not None
    assert tr.enrollment.status == EXITED
    assert tr.enrollment.exit_reason == "event:Order Completed"
    assert tr.enrollment.next_at is None
    assert "converted" in tr.counters
    assert "exited:event:Order Completed" in tr.counters
    assert on_due(j, tr.enrollment, ProfileView("p1"), T0 + timedelta(days=3), ENV) is None


def test_the_branch_reads_did_event_since_entry_from_the_projection() -> None:
    j = journey(
        {
            "id": "j",
            "trigger": {"event": "Signed Up"},
            "steps": [
                {"id": "w", "type": "wait", "duration": "1d"},
                {"id": "b", "type": "branch", "did_event": "Viewed", "then": "s", "else": "end"},
                {"id": "s", "type": "send", "channel": "email", "template": "t"},
            ],
        }
    )
    e = _start(j).enrollment
    before = ProfileView("p1", seen={"Viewed": iso(T0 - timedelta(days=1))})
    after = ProfileView("p1", seen={"Viewed": iso(T0 + timedelta(hours=1))})
    assert on_due(j, e, before, T0 + timedelta(days=1), ENV).actions == []
    taken = on_due(j, e, after, T0 + timedelta(days=1), ENV)
    assert [a.step_id for a in taken.actions] == ["s"]
    assert any(line["what"] == "branch" and line["result"] == "yes" for line in taken.log)


def test_segment_language_condition_in_a_branch() -> None:
    j = journey(
        {
            "id": "j",
            "trigger": {"event": "x"},
            "steps": [
                {
                    "id": "b",
                    "type": "branch",
                    "condition": {"all": [{"trait": "city", "eq": "Shanghai"}, {"tag": "vip"}]},
                    "then": "s",
                },
                {"id": "s", "type": "send", "channel": "email", "template": "t"},
            ],
        }
    )
    yes = ProfileView("p1", traits={"city": "Shanghai"}, tags=["vip"])
    no = ProfileView("p2", traits={"city": "Beijing"}, tags=["vip"])
    assert len(_start(j, yes).actions) == 1
    assert _start(j, no).actions == []


def test_per_order_instances_resume_only_on_their_own_order() -> None:
    j = example("cross-sell-b")
    a = _start(j, instance="o1", props={"order_id": "o1"}).enrollment
    refund_other = EventInfo("r", "Order Refunded", {"order_id": "o2"})
    assert on_event(j, a, ProfileView("p1"), refund_other, T0 + timedelta(days=1), ENV) is None
    refund_own = EventInfo("r", "Order Refunded", {"order_id": "o1"})
    tr = on_event(j, a, ProfileView("p1"), refund_own, T0 + timedelta(days=1), ENV)
    assert tr.enrollment.exit_reason == "event:Order Refunded"


def test_wait_for_the_same_orders_event_with_a_timeout_branch() -> None:
    j = journey(
        {
            "id": "ship",
            "trigger": {"event": "Order Completed"},
            "instance": {"key": "order_id"},
            "steps": [
                {
                    "id": "w",
                    "type": "wait",
                    "event": {"event": "Order Shipped"},
                    "timeout": "2d",
                    "on_timeout": "late",
                },
                {"id": "thanks", "type": "send", "channel": "email", "template": "shipped", "next": "end"},
                {"id": "late", "type": "send", "channel": "sms", "template": "sorry-late"},
            ],
        }
    )
    e = _start(j, instance="o1").enrollment
    other = on_event(j, e, ProfileView("p1"), EventInfo("x", "Order Shipped", {"order_id": "o9"}), T0, ENV)
    assert other is None
    own = on_event(j, e, ProfileView("p1"), EventInfo("y", "Order Shipped", {"order_id": "o1"}), T0, ENV)
    assert [a.step_id for a in own.actions] == ["thanks"]
    late = on_due(j, e, ProfileView("p1"), T0 + timedelta(days=2), ENV)
    assert [a.step_id for a in late.actions] == ["late"]


def test_wait_until_weekday_and_time_uses_the_persons_zone_else_the_tenants() -> None:
    # T0 is Monday 01:00 UTC = Monday 09:00 Shanghai = Sunday 17:00 in Los Angeles.
    shanghai = next_local_time(T0, "mon", "10:00", "Asia/Shanghai", "Asia/Shanghai")
    assert shanghai == T0 + timedelta(hours=1)
    la = next_local_time(T0, "mon", "10:00", "America/Los_Angeles", "Asia/Shanghai")
    assert la.isoformat().startswith("2026-03-02T18:00")
    bad_zone = next_local_time(T0, "any", "08:00", "Mars/Base", "Asia/Shanghai")
    assert bad_zone.isoformat().startswith("2026-03-03T00:00")
    j = journey(
        {
            "id": "j",
            "trigger": {"event": "x"},
            "steps": [{"id": "w", "type": "wait", "until": {"weekday": "mon", "time": "10:00"}}],
        }
    )
    e = _start(j, ProfileView("p1", traits={"timezone": "America/Los_Angeles"})).enrollment
    assert e.next_at.startswith("2026-03-02T18:00")


def test_splits_and_holdout_are_deterministic_per_profile() -> None:
    j = journey(
        {
            "id": "ab",
            "trigger": {"event": "x"},
            "holdout_percent": 20,
            "goal": {"event": "Order Completed", "within": "7d"},
            "steps": [
                {
                    "id": "split",
                    "type": "split",
                    "paths": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "b"}],
                },
                {"id": "a", "type": "send", "channel": "email", "template": "a", "next": "end"},
                {"id": "b", "type": "send", "channel": "sms", "template": "b"},
            ],
        }
    )
    first = [_start(j, ProfileView(f"p{i}")) for i in range(400)]
    again = [_start(j, ProfileView(f"p{i}")) for i in range(400)]
    assert [t.enrollment.holdout for t in first] == [t.enrollment.holdout for t in again]
    assert [[a.step_id for a in t.actions] for t in first] == [[a.step_id for a in t.actions] for t in again]
    held = sum(t.enrollment.holdout for t in first)
    assert 50 < held < 110  # ~20 % of 400
    assert all(t.actions == [] for t in first if t.enrollment.holdout)
    paths = [t.actions[0].step_id for t in first if not t.enrollment.holdout]
    assert 0.35 < paths.count("a") / len(paths) < 0.65
    holdout = next(t.enrollment for t in first if t.enrollment.holdout)
    conv = on_event(
        j, holdout, ProfileView(holdout.profile_id), EventInfo("o", "Order Completed", {}), T0, ENV
    )
    assert "converted_holdout" in conv.counters


def test_action_ids_are_the_same_on_a_rerun_and_differ_per_step_visit() -> None:
    j = example("signup-coupon")
    e = _start(j).enrollment
    one = on_due(j, e, ProfileView("p1"), T0 + timedelta(days=3), ENV)
    two = on_due(j, e, ProfileView("p1"), T0 + timedelta(days=3, minutes=7), ENV)
    assert [a.idempotency_key for a in one.actions] == [a.idempotency_key for a in two.actions]
    assert len({a.idempotency_key for a in one.actions}) == 2


def test_leaving_an_exit_segment_ends_the_enrollment() -> None:
    j = example("winback")
    j2 = journey(
        {
            **j.model_dump(by_alias=True, exclude={"version"}),
            "steps": [
                {"id": "w", "type": "wait", "duration": "1d"},
                {"id": "s", "type": "send", "channel": "email", "template": "winback-email"},
            ],
        }
    )
    e = _start(j2).enrollment
    assert on_segment(j2, e, "other", False, T0) is None
    tr = on_segment(j2, e, "dormant_90_days", False, T0 + timedelta(hours=1))
    assert tr.enrollment.exit_reason == "segment_exited:dormant_90_days"


def test_the_winback_sends_at_once_and_records_a_decision_log() -> None:
    tr = _start(example("winback"))
    assert [a.params["template_id"] for a in tr.actions] == ["winback-email"]
    assert [line["what"] for line in tr.enrollment.log][:2] == ["entered", "action send"]
