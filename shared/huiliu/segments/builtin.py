"""Built-in models: lifecycle stage and RFM, with per-tenant thresholds. Pure functions.

Both read identity's computed attributes (``order_count``, ``revenue_total``, ``first_order_at``,
``last_order_at``) and the evaluation time, and say when their answer next changes by time alone
(the segments stage puts that moment in its due index).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY = 86400.0


@lru_cache(maxsize=65536)
def epoch(value: str) -> float:
    """ISO-8601 text -> POSIX seconds (cached: the same timestamps recur across segments)."""
    text = value.replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def to_epoch(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return epoch(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LifecycleThresholds(_Frozen):
    """prospect: no order; new: first order within ``new_days``; repeat: ``repeat_orders`` or more;
    active: one order, older than ``new_days``; at_risk: no order for ``at_risk_days``; churned: no
    order for ``churned_days``."""

    new_days: float = Field(default=30, gt=0)
    repeat_orders: int = Field(default=2, ge=2)
    at_risk_days: float = Field(default=90, gt=0)
    churned_days: float = Field(default=180, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleThresholds:
        if not self.at_risk_days < self.churned_days:
            raise ValueError("at_risk_days must be below churned_days")
        return self


def _breaks(values: Sequence[float]) -> list[float]:
    out = [float(v) for v in values]
    if len(out) != 4 or out != sorted(out):
        raise ValueError("four ascending breakpoints (the 20/40/60/80 % quantiles)")
    return out


class RfmModel(_Frozen):
    """Quantile breakpoints per tenant: four ascending values each.

    R: days since the last order (score 5 below ``recency_days[0]`` … 1 from the last one on);
    F: order count and M: revenue (score 1 + the number of breakpoints the value is above).
    ``computed_at`` is when the breakpoints were last recomputed from the tenant's histograms.
    """

    recency_days: list[float] = Field(default_factory=lambda: [30.0, 90.0, 180.0, 365.0])
    frequency: list[float] = Field(default_factory=lambda: [1.0, 2.0, 3.0, 5.0])
    monetary: list[float] = Field(default_factory=lambda: [100.0, 300.0, 1000.0, 3000.0])
    computed_at: str | None = None
    profiles: int = 0

    @model_validator(mode="after")
    def _check(self) -> RfmModel:
        for name in ("recency_days", "frequency", "monetary"):
            try:
                _breaks(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self


class TenantModels(_Frozen):
    lifecycle: LifecycleThresholds = Field(default_factory=LifecycleThresholds)
    rfm: RfmModel = Field(default_factory=RfmModel)
    # the sweep recomputes the RFM breakpoints from the histograms this often
    rfm_refresh_hours: float = Field(default=24, gt=0)


DEFAULT_MODELS = TenantModels()


def lifecycle_stage(
    computed: Mapping[str, Any], now: float, th: LifecycleThresholds
) -> tuple[str, float | None]:
    """(stage, the moment it next changes by time alone or None)."""
    orders = computed.get("order_count") or 0
    last = to_epoch(computed.get("last_order_at"))
    if not orders or last is None:
        return "prospect", None
    idle = now - last
    if idle >= th.churned_days * DAY:
        return "churned", None
    at_risk_at = last + th.at_risk_days * DAY
    if idle >= th.at_risk_days * DAY:
        return "at_risk", last + th.churned_days * DAY
    if orders >= th.repeat_orders:
        return "repeat", at_risk_at
    first = to_epoch(computed.get("first_order_at")) or last
    new_until = first + th.new_days * DAY
    if now < new_until:
        return "new", min(new_until, at_risk_at)
    return "active", at_risk_at


def _score_above(value: float, breaks: Sequence[float]) -> int:
    return 1 + bisect.bisect_left(breaks, value)  # number of breakpoints strictly below value


def rfm_scores(
    computed: Mapping[str, Any], now: float, model: RfmModel
) -> tuple[tuple[int, int, int] | None, float | None]:
    """((r, f, m) scores 1..5, or None for a profile without orders; next change by time)."""
    orders = computed.get("order_count") or 0
    last = to_epoch(computed.get("last_order_at"))
    if not orders or last is None:
        return None, None
    days = max(0.0, (now - last) / DAY)
    r_breaks = model.recency_days
    above = bisect.bisect_right(r_breaks, days)  # breakpoints reached
    r = 5 - above
    next_change = last + r_breaks[above] * DAY if above < len(r_breaks) else None
    f = _score_above(float(orders), model.frequency)
    revenue = computed.get("net_revenue", computed.get("revenue_total")) or 0
    m = _score_above(float(revenue), model.monetary)
    return (r, f, m), next_change


_GROUPS: dict[tuple[int, int], str] = {}
for _r in range(1, 6):
    for _f in range(1, 6):
        if _r == 5 and _f >= 4:
            _g = "champions"
        elif _r >= 3 and _f >= 4:
            _g = "loyal"
        elif _r >= 4 and _f >= 2:
            _g = "potential"
        elif _r == 5:
            _g = "new_customers"
        elif _r == 4:
            _g = "promising"
        elif _r == 3 and _f == 3:
            _g = "need_attention"
        elif _r == 3:
            _g = "about_to_sleep"
        elif _f == 5:
            _g = "cant_lose"
        elif _f >= 3:
            _g = "at_risk"
        elif _r == 2:
            _g = "hibernating"
        else:
            _g = "lost"
        _GROUPS[(_r, _f)] = _g


def rfm_group(scores: tuple[int, int, int] | None) -> str | None:
    """The named group of an (R, F, M) score (the usual R x F grid; M is its own score)."""
    if scores is None:
        return None
    return _GROUPS[(scores[0], scores[1])]


def quantile_breaks(
    histogram: Mapping[float, int], quantiles: Sequence[float] = (0.2, 0.4, 0.6, 0.8)
) -> list[float]:
    """Breakpoints at the given quantiles of a histogram {value: count} (values ascending)."""
    items = sorted((float(k), int(v)) for k, v in histogram.items() if int(v) > 0)
    total = sum(c for _, c in items)
    if not total:
        raise ValueError("empty histogram")
    out: list[float] = []
    running = 0
    i = 0
    for q in quantiles:
        target = q * total
        while i < len(items) and running + items[i][1] < target:
            running += items[i][1]
            i += 1
        out.append(items[min(i, len(items) - 1)][0])
    # strictly ascending breakpoints keep every score reachable where the data allows
    for k in range(1, len(out)):
        if out[k] < out[k - 1]:
            out[k] = out[k - 1]
    return out


# -- RFM histograms (per tenant, sharded) and the breakpoints recomputed from them -----------------
def rfm_buckets(computed: Mapping[str, Any]) -> dict[str, str] | None:
    """The histogram cells one profile occupies: F (orders, capped at 100), M (revenue to two
    significant digits) and R (the day of the last order, days since the epoch)."""
    orders = computed.get("order_count") or 0
    last = to_epoch(computed.get("last_order_at"))
    if not orders or last is None:
        return None
    revenue = float(computed.get("net_revenue", computed.get("revenue_total")) or 0)
    rounded = float(f"{revenue:.2g}") if revenue > 0 else 0.0
    return {"f": str(min(int(orders), 100)), "m": f"{rounded:g}", "r": str(int(last // DAY))}


def rfm_histogram_delta(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, int]:
    """Histogram attribute -> +1/-1 when a profile moves between cells (``f_3``, ``m_1200``, ``r_20530``)."""
    old = rfm_buckets(before or {})
    new = rfm_buckets(after or {})
    delta: dict[str, int] = {}
    for axis in ("f", "m", "r"):
        a = old[axis] if old else None
        b = new[axis] if new else None
        if a == b:
            continue
        if a is not None:
            delta[f"{axis}_{a}"] = delta.get(f"{axis}_{a}", 0) - 1
        if b is not None:
            delta[f"{axis}_{b}"] = delta.get(f"{axis}_{b}", 0) + 1
    return delta


def rfm_histogram(computed: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``f_/m_/r_`` cell counts of the buyers among profiles' computed attributes."""
    histogram: dict[str, int] = {}
    for attrs in computed:
        cells = rfm_buckets(attrs)
        for axis, value in (cells or {}).items():
            histogram[f"{axis}_{value}"] = histogram.get(f"{axis}_{value}", 0) + 1
    return histogram


MIN_RFM_PROFILES = 20


def rfm_from_histograms(histogram: Mapping[str, int], now: float, computed_at: str) -> RfmModel | None:
    """New breakpoints from a tenant's summed histogram (None below MIN_RFM_PROFILES buyers)."""
    axes: dict[str, dict[float, int]] = {"f": {}, "m": {}, "r": {}}
    today = int(now // DAY)
    for name, count in histogram.items():
        axis, _, cell = name.partition("_")
        if axis not in axes or int(count) <= 0:
            continue
        value = float(cell)
        if axis == "r":
            value = float(max(0, today - int(value)))  # days since the last order
        axes[axis][value] = axes[axis].get(value, 0) + int(count)
    total = sum(axes["f"].values())
    if total < MIN_RFM_PROFILES:
        return None
    return RfmModel(
        recency_days=[max(1.0, b) for b in quantile_breaks(axes["r"])],
        frequency=quantile_breaks(axes["f"]),
        monetary=quantile_breaks(axes["m"]),
        computed_at=computed_at,
        profiles=total,
    )
