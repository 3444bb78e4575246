"""Compiled conditions: operators, windows, next change by time, reads and explain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from huiliu.segments.builtin import epoch
from huiliu.segments.compiler import EvalContext, compile_condition, explain

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(timespec="microseconds")


def ctx(**kwargs: object) -> EvalContext:
    return EvalContext(now=NOW.timestamp(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("leaf", "value", "expected"),
    [
        ({"eq": "上海"}, "上海", True),
        ({"eq": "上海"}, "北京", False),
        ({"neq": "上海"}, None, True),
        ({"in": ["a", "b"]}, "b", True),
        ({"in": ["a", "b"]}, ["x", "a"], True),
        ({"contains": "sport"}, ["music", "sport"], True),
        ({"contains": "hai"}, "shanghai", True),
        ({"starts_with": "138"}, "13800138000", True),
        ({"starts_with": "138"}, 138, False),
        ({"exists": True}, None, False),
        ({"exists": False}, None, True),
        ({"gt": 10}, 11, True),
        ({"gte": 10}, "10", True),
        ({"lt": 10}, "abc", False),
        ({"lte": 10}, None, False),
        ({"between": [1, 5]}, 5, True),
        ({"between": [1, 5]}, 6, False),
        ({"gte": "2026-01-01"}, "2026-03-01T00:00:00+00:00", True),
    ],
)
def test_operators_on_a_trait(leaf: dict[str, object], value: object, expected: bool) -> None:
    compiled = compile_condition({"trait": "x", **leaf})
    assert compiled(ctx(traits={"x": value} if value is not None else {})) is expected


def test_all_any_not_combine() -> None:
    compiled = compile_condition(
        {
            "all": [
                {"tag": "vip"},
                {"any": [{"trait": "a", "eq": 1}, {"trait": "b", "eq": 2}]},
                {"not": {"tag": "x"}},
            ]
        }
    )
    assert compiled(ctx(tags=["vip"], traits={"b": 2}))
    assert not compiled(ctx(tags=["vip", "x"], traits={"b": 2}))
    assert not compiled(ctx(tags=["vip"], traits={"b": 3}))


def test_ordered_in_last_30_days_ends_exactly_30_days_after_the_last_order() -> None:
    compiled = compile_condition({"event": "Order Completed", "within": "P30D"})
    computed = {"events": {"Order Completed": {"count": 1, "last_at": iso(10)}}}
    here = ctx(computed=computed)
    assert compiled(here)
    due = compiled.next_change(here)
    assert due == epoch(iso(10)) + 30 * 86400
    assert compiled(EvalContext(now=due - 1, computed=computed))
    assert not compiled(EvalContext(now=due, computed=computed))


def test_windowed_counts_and_sums_read_the_occurrence_log() -> None:
    log = {"Order Completed": [[NOW.timestamp() - d * 86400, {"revenue": 100}] for d in (40, 20, 5)]}
    twice = compile_condition({"event": "Order Completed", "within": "P30D", "count": {"gte": 2}})
    spent = compile_condition(
        {"event": "Order Completed", "within": "P30D", "sum": {"property": "revenue", "gte": 200}}
    )
    here = ctx(events=log)
    assert twice(here)
    assert spent(here)
    assert twice.next_change(here) == NOW.timestamp() + 10 * 86400  # the 20-day-old order leaves
    assert twice.log_events == {"Order Completed": frozenset()}
    assert spent.log_events == {"Order Completed": frozenset({"revenue"})}
    later = EvalContext(now=NOW.timestamp() + 10 * 86400, events=log)
    assert not twice(later)


def test_between_dates_counts_only_inside_the_dates() -> None:
    compiled = compile_condition({"event": "Viewed", "between": ["2026-11-01", "2026-11-12"]})
    inside = {"Viewed": [[datetime(2026, 11, 11, 23, tzinfo=UTC).timestamp(), {}]]}
    outside = {"Viewed": [[datetime(2026, 11, 12, 1, tzinfo=UTC).timestamp(), {}]]}
    assert compiled(ctx(events=inside))
    assert not compiled(ctx(events=outside))


def test_never_and_all_time_counts_use_identity_counters() -> None:
    never = compile_condition({"event": "Order Completed", "never": True})
    thrice = compile_condition({"event": "Order Completed", "count": {"gte": 3}})
    computed = {"events": {"Order Completed": {"count": 3, "last_at": iso(400)}}}
    assert not never(ctx(computed=computed))
    assert never(ctx())
    assert thrice(ctx(computed=computed))


def test_dormant_field_condition_becomes_true_at_its_edge() -> None:
    compiled = compile_condition({"computed": "last_order_at", "older_than": "P90D"})
    computed = {"last_order_at": iso(80)}
    assert not compiled(ctx(computed=computed))
    assert compiled.next_change(ctx(computed=computed)) == epoch(iso(80)) + 90 * 86400


def test_lifecycle_and_rfm() -> None:
    new = {"order_count": 1, "revenue_total": 50, "first_order_at": iso(3), "last_order_at": iso(3)}
    champion = {"order_count": 9, "revenue_total": 9000, "first_order_at": iso(300), "last_order_at": iso(2)}
    assert compile_condition({"lifecycle": "new"})(ctx(computed=new))
    assert compile_condition({"lifecycle": "repeat"})(ctx(computed=champion))
    assert compile_condition({"lifecycle": "prospect"})(ctx())
    assert compile_condition({"rfm": "champions"})(ctx(computed=champion))
    assert compile_condition({"rfm": "new_customers"})(ctx(computed=new))
    assert compile_condition({"rfm_score": "m", "eq": 5})(ctx(computed=champion))
    # the new customer becomes "active" when the new window ends: that is its next change
    assert (
        compile_condition({"lifecycle": "new"}).next_change(ctx(computed=new)) == epoch(iso(3)) + 30 * 86400
    )


def test_consent_identifiers_and_segment_membership() -> None:
    fan = compile_condition({"all": [{"identifier": "wechat_openid"}, {"consent": "wechat"}]})
    assert fan(ctx(identifier_types=["wechat_openid"], consent={"wechat": {"granted": True}}))
    assert not fan(ctx(identifier_types=["wechat_openid"], consent={"wechat": {"granted": False}}))
    member = compile_condition({"segment": "vip"})
    assert member(ctx(segments={"vip"}))
    assert member.segment_refs == {"vip"}


def test_reads_name_the_fields_a_condition_depends_on() -> None:
    compiled = compile_condition(
        {
            "any": [
                {"trait": "city", "eq": "x"},
                {"event": "Signed Up"},
                {"computed": "events.Paid.count", "gt": 1},
            ]
        }
    )
    assert compiled.reads == {"traits.city", "events.Signed Up", "events.Paid"}


def test_explain_reports_each_condition_with_the_value_seen() -> None:
    report = explain(
        {"all": [{"computed": "revenue_total", "gte": 5000}, {"trait": "city", "eq": "北京"}]},
        ctx(traits={"city": "上海"}, computed={"revenue_total": 6000}),
    )
    assert report["held"] is False
    assert [(c["held"], c["seen"]) for c in report["children"]] == [(True, 6000), (False, "上海")]
