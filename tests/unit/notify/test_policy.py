"""Quiet hours, frequency caps and the policy order — pure, with time passed in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from huiliu.notify.policy import CapRule, CapState, PolicyInput, Verdict, check_cap, decide, quiet_until

SHANGHAI = "Asia/Shanghai"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 23:30 Shanghai (15:30 UTC) → 08:00 Shanghai the next day (00:00 UTC next day)
        (utc(2026, 3, 1, 15, 30), utc(2026, 3, 2, 0, 0)),
        # 21:00 exactly: the window has started
        (utc(2026, 3, 1, 13, 0), utc(2026, 3, 2, 0, 0)),
        # 06:00 Shanghai (22:00 UTC the day before) → 08:00 the same Shanghai day
        (utc(2026, 3, 1, 22, 0), utc(2026, 3, 2, 0, 0)),
        # 00:10 Shanghai, just after midnight: still the same night's window
        (utc(2026, 3, 1, 16, 10), utc(2026, 3, 2, 0, 0)),
        # 08:00 exactly and 12:00: send now
        (utc(2026, 3, 2, 0, 0), None),
        (utc(2026, 3, 2, 4, 0), None),
        # 20:59 Shanghai: not yet
        (utc(2026, 3, 1, 12, 59), None),
    ],
)
def test_quiet_hours_across_midnight_in_shanghai_defer_to_the_window_end(
    now: datetime, expected: datetime | None
) -> None:
    assert quiet_until(now, None, "21:00", "08:00", tenant_tz=SHANGHAI) == expected


def test_the_persons_time_zone_wins_over_the_tenants() -> None:
    now = utc(2026, 3, 1, 15, 30)  # 23:30 in Shanghai, 16:30 in Berlin
    assert quiet_until(now, "Europe/Berlin", "21:00", "08:00", tenant_tz=SHANGHAI) is None
    assert quiet_until(now, "not/a-zone", "21:00", "08:00", tenant_tz=SHANGHAI) == utc(2026, 3, 2, 0, 0)


def test_a_window_ending_in_a_skipped_dst_hour_ends_just_after_it() -> None:
    # New York 2026-03-08: 02:00 → 03:00. A window 22:00–02:30 ends at 03:30 local (07:30 UTC).
    until = quiet_until(utc(2026, 3, 8, 4, 0), "America/New_York", "22:00", "02:30", tenant_tz=SHANGHAI)
    assert until == utc(2026, 3, 8, 7, 30)


def test_a_same_day_window_and_an_empty_window() -> None:
    noon = utc(2026, 3, 2, 4, 30)  # 12:30 Shanghai
    assert quiet_until(noon, None, "12:00", "14:00", tenant_tz=SHANGHAI) == utc(2026, 3, 2, 6, 0)
    assert quiet_until(noon, None, "08:00", "08:00", tenant_tz=SHANGHAI) is None


WEEK = CapRule(limit=3, window=timedelta(days=7), reserved=1, priority_threshold=50)
NOW = utc(2026, 3, 10, 0, 0)


def _state(*days_ago: float) -> CapState:
    return CapState([(int((NOW - timedelta(days=d)).timestamp()), f"k{d}") for d in days_ago], version=4)


def test_cap_counts_only_sends_inside_the_rolling_window() -> None:
    verdict = check_cap(WEEK, _state(8, 9, 1), NOW, key="new", priority=99)
    assert verdict.decision.verdict == Verdict.SEND
    assert verdict.sends is not None
    assert [k for _, k in verdict.sends] == ["k1", "new"]


def test_the_last_slot_is_kept_for_an_important_message() -> None:
    two_sent = _state(1, 2)
    ordinary = check_cap(WEEK, two_sent, NOW, key="promo", priority=10)
    important = check_cap(WEEK, two_sent, NOW, key="cart", priority=80)
    assert ordinary.decision.verdict == Verdict.DEFER
    assert important.decision.verdict == Verdict.SEND


def test_over_the_cap_defers_until_the_oldest_send_leaves_the_window() -> None:
    verdict = check_cap(WEEK, _state(1, 2, 6), NOW, key="x", priority=99)
    assert verdict.decision.verdict == Verdict.DEFER
    assert verdict.decision.until == NOW + timedelta(days=1, seconds=1)  # the 6-day-old send expires
    assert verdict.decision.reason == "frequency_cap:3/7d"


def test_over_the_cap_drops_when_the_tenant_says_so() -> None:
    rule = CapRule(limit=3, window=timedelta(days=7), over_cap="drop")
    assert check_cap(rule, _state(1, 2, 3), NOW, key="x", priority=0).decision.verdict == Verdict.DROP


def test_a_retry_of_a_counted_send_is_not_counted_twice() -> None:
    state = _state(1, 2, 3)
    verdict = check_cap(WEEK, state, NOW, key="k1", priority=0)
    assert verdict.decision.sends
    assert verdict.sends is not None
    assert len(verdict.sends) == 3


def _input(**kw: object) -> PolicyInput:
    base: dict[str, object] = {
        "channel": "email",
        "purpose": "marketing",
        "address": "a@x.com",
        "suppressed": None,
        "consent": True,
        "person_tz": None,
        "tenant_tz": SHANGHAI,
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "quiet_applies": True,
    }
    base.update(kw)
    return PolicyInput(**base)  # type: ignore[arg-type]


def test_policy_order_suppression_then_consent_then_quiet_hours() -> None:
    night = utc(2026, 3, 1, 15, 30)
    assert decide(_input(suppressed="bounce", consent=False), night).reason == "suppressed:bounce"
    assert decide(_input(consent=False), night).reason == "no_consent:email"
    assert decide(_input(), night).verdict == Verdict.DEFER
    assert decide(_input(address=None), night).reason == "no_email_address"


def test_transactional_needs_no_consent_and_skips_quiet_hours_unless_asked() -> None:
    night = utc(2026, 3, 1, 15, 30)
    assert decide(_input(purpose="transactional", consent=False, quiet_applies=False), night).sends
    assert decide(_input(purpose="transactional", consent=False), night).verdict == Verdict.DEFER


def test_each_decision_costs_well_under_a_millisecond_of_cpu() -> None:
    state = _state(1, 2)
    inp = _input()
    started = time.process_time()
    for i in range(2000):
        decide(inp, NOW + timedelta(minutes=i))
        check_cap(WEEK, state, NOW, key=f"k-{i}", priority=i % 100)
    per_pair_ms = (time.process_time() - started) / 2000 * 1000
    assert per_pair_ms < 1.0, per_pair_ms
