"""Reports from counters kept as events flow: funnels with rates, segment sizes over time, customers
per month with the repurchase rate, ingestion per connector — and a report read that costs the same
whatever the number of profiles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huiliu.reports.document import build
from huiliu.reports.repository import ReportsRepository
from huiliu.reports.stage import ReportsStage
from huiliu.settings import get_settings
from huiliu.storage.dynamo import CallStats

TENANT = "shop-a"


def bus(detail_type: str, **detail: Any) -> str:
    return json.dumps(
        {"detail-type": detail_type, "source": "huiliu.test", "detail": {"tenant_id": TENANT, **detail}}
    )


def order(profile: str, when: str, nth: int, revenue: float = 100.0, *, counted: bool = True) -> str:
    return bus(
        "profile.changed",
        profile_id=profile,
        event={"message_id": f"m-{profile}-{when}", "type": "track", "name": "Order Completed",
               "timestamp": when, "properties": {"order_id": f"o-{profile}-{nth}", "revenue": revenue}},
        changed={"computed": {"order_count": nth} if counted else {}},
        profile={"profile_id": profile, "version": nth, "computed": {"order_count": nth}},
    )  # fmt: skip


def notification(kind: str, journey: str = "winback", channel: str = "email") -> str:
    return bus(
        f"notification.{kind}", journey_id=journey, channel=channel, profile_id="p", idempotency_key="k"
    )


@pytest.fixture
def stage(deployed: Any) -> ReportsStage:
    return ReportsStage(ReportsRepository(get_settings().reports_table), now=lambda: 1_800_000_000)


def _report(stage: ReportsStage) -> Any:
    return build(TENANT, stage.repo.items(TENANT))


def test_the_funnel_counts_each_step_per_journey_and_channel_with_rates(stage: ReportsStage) -> None:
    stage.handle(
        [notification("requested")] * 10
        + [notification("sent")] * 8
        + [notification("delivered")] * 6
        + [notification("opened")] * 3
        + [notification("clicked")] * 2
        + [bus("journey.converted", journey_id="winback", channel="email")]
        + [notification("requested", channel="sms")] * 4
    )

    funnels = {(f.journey_id, f.channel): f for f in _report(stage).funnels}
    email = funnels[("winback", "email")]
    assert email.counts["requested"] == 10
    assert email.counts["converted"] == 1
    assert email.rates["sent_per_requested"] == 0.8
    assert email.rates["delivered_per_sent"] == 0.75
    assert email.rates["converted_of_requested"] == 0.1
    assert funnels[("winback", "sms")].counts["requested"] == 4


def test_segment_sizes_follow_entries_and_exits_day_by_day(stage: ReportsStage) -> None:
    def seg(kind: str, day: str) -> str:
        return bus(f"segment.{kind}", segment_id="vip", profile_id="p", occurred_at=f"{day}T10:00:00+00:00")

    stage.handle([seg("entered", "2026-11-01")] * 3)
    stage.handle([seg("entered", "2026-11-02"), seg("exited", "2026-11-02")])
    stage.handle([seg("exited", "2026-11-03")] * 2)

    (vip,) = _report(stage).segments
    assert (vip.size, vip.entered, vip.exited) == (1, 4, 3)
    assert vip.series == [("2026-11-01", 3), ("2026-11-02", 3), ("2026-11-03", 1)]


def test_customers_per_month_new_returning_and_repurchase_rate(stage: ReportsStage) -> None:
    # October: a, b, c buy (first orders); November: a buys twice, b once, d first time
    stage.handle([order("a", "2026-10-03T00:00:00Z", 1), order("b", "2026-10-05T00:00:00Z", 1),
                  order("c", "2026-10-09T00:00:00Z", 1)])  # fmt: skip
    stage.handle(
        [
            order("a", "2026-11-01T00:00:00Z", 2),
            order("a", "2026-11-20T00:00:00Z", 3),
            order("b", "2026-11-02T00:00:00Z", 2),
            order("d", "2026-11-03T00:00:00Z", 1, 50.0),
            order("b", "2026-11-04T00:00:00Z", 2, counted=False),
        ]
    )  # fmt: skip  (not counted twice)

    october, november = _report(stage).customers
    assert (october.customers, october.new_customers, october.repurchase_rate) == (3, 3, None)
    assert november.orders == 4
    assert november.revenue == 350.0
    assert (november.customers, november.new_customers, november.returning_customers) == (3, 1, 2)
    assert november.retained == 2
    assert november.repurchase_rate == round(2 / 3, 4)


def test_an_absurd_order_amount_is_set_aside_and_the_months_revenue_keeps_counting(
    stage: ReportsStage,
) -> None:
    # 1e38 plus a cent needs 40 significant digits: DynamoDB's ADD refuses it, and the month's counter
    # item would fail for every later order (the accepted-means-processed fuzzer found it)
    stage.handle([order("a", "2026-11-01T00:00:00Z", 1, 1e38), order("b", "2026-11-02T00:00:00Z", 1, 0.01)])
    stage.handle(
        [order("c", "2026-11-03T00:00:00Z", 1, 10**38), order("d", "2026-11-04T00:00:00Z", 1, 99.999)]
    )

    (november,) = _report(stage).customers
    assert november.orders == 4
    assert november.revenue == 100.009
    item = next(i for i in stage.repo.items(TENANT) if i["sk"] == "MONTH#2026-11")
    assert item["revenue_out_of_range"] == 2


def test_ingestion_is_counted_per_day_and_connector_and_replays_are_not(stage: ReportsStage) -> None:
    def ingested(connector: str, replay: bool = False) -> str:
        return bus(
            "event.ingested",
            source={"connector": connector},
            received_at="2026-11-27T08:00:00Z",
            replay=replay,
        )

    stage.handle([ingested("shopify")] * 3 + [ingested("youzan")] + [ingested("shopify", replay=True)])

    rows = {(r.day, r.connector): r.ingested for r in _report(stage).ingestion}
    assert rows == {("2026-11-27", "shopify"): 3, ("2026-11-27", "youzan"): 1}


def test_a_batch_writes_once_per_counter_item_not_per_event(stage: ReportsStage) -> None:
    stats = CallStats()
    stage.repo.stats = stats

    stage.handle([notification("requested")] * 50 + [notification("sent")] * 40)

    assert stats.by_op == {"UpdateItem": 1}


@pytest.mark.parametrize("profiles", [10, 300])
def test_reading_a_report_costs_one_query_whatever_the_number_of_profiles(
    stage: ReportsStage, profiles: int
) -> None:
    stage.handle([order(f"p{i}", "2026-11-01T00:00:00Z", 1) for i in range(profiles)])
    stage.handle([bus("segment.entered", segment_id="all", profile_id=f"p{i}", occurred_at="2026-11-01")
                  for i in range(profiles)])  # fmt: skip
    stats = CallStats()
    repo = ReportsRepository(get_settings().reports_table, stats=stats)

    report = build(TENANT, repo.items(TENANT))

    assert report.customers[0].customers == profiles
    assert stats.by_op == {"Query": 1}


def test_the_cli_prints_tables_and_writes_one_self_contained_html_page(stage: ReportsStage) -> None:
    from huiliu_infra.cli_report import page, tables

    stage.handle([notification("requested")] * 4 + [notification("sent")] * 3)
    stage.handle([order("a", "2026-10-03T00:00:00Z", 1), order("a", "2026-11-03T00:00:00Z", 2)])
    stage.handle([bus("segment.entered", segment_id="vip", profile_id="a", occurred_at="2026-11-03")])
    report = _report(stage).model_dump(mode="json")

    text = tables(report)
    document = page(report)

    assert "winback" in text
    assert "100.0%" in text  # November's repurchase rate: a bought in October and again in November
    assert document.count("<svg") >= 3
    for outside in ("<script", "src=", "href=", "http://", "https://", "@import", "url("):
        assert outside not in document
