"""Lifecycle and RFM models with per-tenant thresholds."""

from __future__ import annotations

import pytest
from huiliu.segments.builtin import (
    DAY,
    LifecycleThresholds,
    RfmModel,
    lifecycle_stage,
    quantile_breaks,
    rfm_group,
    rfm_scores,
)

NOW = 1_800_000_000.0


def at(days_ago: float) -> float:
    return NOW - days_ago * DAY


def computed(orders: int, first: float, last: float, revenue: float = 100) -> dict[str, object]:
    return {"order_count": orders, "first_order_at": first, "last_order_at": last, "revenue_total": revenue}


@pytest.mark.parametrize(
    ("orders", "first", "last", "stage"),
    [
        (0, None, None, "prospect"),
        (1, 5, 5, "new"),
        (1, 40, 40, "active"),
        (3, 200, 10, "repeat"),
        (3, 200, 100, "at_risk"),
        (1, 400, 200, "churned"),
    ],
)
def test_lifecycle_stages(orders: int, first: float | None, last: float | None, stage: str) -> None:
    data = computed(orders, at(first), at(last)) if orders else {}
    assert lifecycle_stage(data, NOW, LifecycleThresholds())[0] == stage


def test_tenant_thresholds_change_the_stage() -> None:
    data = computed(1, at(40), at(40))
    assert lifecycle_stage(data, NOW, LifecycleThresholds(new_days=60))[0] == "new"
    with pytest.raises(ValueError, match="below churned_days"):
        LifecycleThresholds(at_risk_days=200, churned_days=100)


def test_rfm_scores_groups_and_next_recency_edge() -> None:
    model = RfmModel(recency_days=[10, 20, 30, 40], frequency=[1, 2, 3, 4], monetary=[10, 20, 30, 40])
    scores, edge = rfm_scores(computed(5, at(100), at(15), revenue=35), NOW, model)
    assert scores == (4, 5, 4)
    assert rfm_group(scores) == "loyal"
    assert edge == at(15) + 20 * DAY
    assert rfm_scores({}, NOW, model) == (None, None)


def test_every_rf_cell_has_a_named_group() -> None:
    groups = {rfm_group((r, f, 1)) for r in range(1, 6) for f in range(1, 6)}
    assert {"champions", "loyal", "potential", "at_risk", "hibernating", "lost"} <= groups


def test_quantile_breaks_from_a_histogram() -> None:
    histogram = {float(v): 1 for v in range(1, 101)}
    assert quantile_breaks(histogram) == [20.0, 40.0, 60.0, 80.0]


def test_a_profile_moves_between_histogram_cells_as_it_orders() -> None:
    from huiliu.segments.builtin import rfm_buckets, rfm_histogram_delta

    one = {"order_count": 1, "revenue_total": 1234, "last_order_at": at(3)}
    two = {"order_count": 2, "revenue_total": 1500, "last_order_at": at(1)}
    assert rfm_buckets(one) == {"f": "1", "m": "1200", "r": str(int(at(3) // DAY))}
    delta = rfm_histogram_delta(one, two)
    assert delta == {
        "f_1": -1,
        "f_2": 1,
        "m_1200": -1,
        "m_1500": 1,
        f"r_{int(at(3) // DAY)}": -1,
        f"r_{int(at(1) // DAY)}": 1,
    }
    assert rfm_histogram_delta(None, {}) == {}
    assert sum(rfm_histogram_delta(two, None).values()) == -3


def test_breakpoints_are_recomputed_from_a_tenants_histogram() -> None:
    from huiliu.segments.builtin import rfm_from_histograms

    histogram: dict[str, int] = {}
    for n in range(1, 101):
        for key in (f"f_{n % 10 + 1}", f"m_{n * 10}", f"r_{int(at(n) // DAY)}"):
            histogram[key] = histogram.get(key, 0) + 1
    model = rfm_from_histograms(histogram, NOW, "2026-11-27T00:00:00+00:00")
    assert model is not None
    assert model.recency_days == [20.0, 40.0, 60.0, 80.0]
    assert model.monetary == [200.0, 400.0, 600.0, 800.0]
    assert model.frequency == [2.0, 4.0, 6.0, 8.0]
    assert model.profiles == 100
    assert rfm_from_histograms({"f_1": 3, "m_10": 3, "r_1": 3}, NOW, "x") is None  # too few buyers
