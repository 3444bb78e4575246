"""What each bus event adds to the report counters. Pure: no AWS, no clock (times come from events).

Counter items (ReportsTable, one partition per tenant: ``pk = T#{tenant}``):

=============================================  ===============================================
``FUNNEL#{journey}#{channel}``                 requested, sent, delivered, opened, clicked,
                                               converted, suppressed, failed, bounced, complained
``SEG#{segment}``                              size (entered - exited), entered, exited
``SEGDAY#{segment}#{YYYY-MM-DD}``              size at the day's last change (a time series)
``MONTH#{YYYY-MM}``                            orders, revenue, customers, new_customers,
                                               returning_customers, retained
``INGEST#{YYYY-MM-DD}#{connector}``            ingested, rejected, rejected_{reason}
=============================================  ===============================================

Customers per month are counted once each with a marker item (``pk = T#{tenant}#CUST#{YYYY-MM}``,
``sk = profile``, expiring after ~3 months): the first order of a person in a month counts them;
``new`` if it is their first order ever, else ``returning``; ``retained`` if they also ordered the
month before. **Repurchase rate** of month M = retained(M) / customers(M-1): the share of last
month's buyers who bought again this month.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ORDER_EVENTS = frozenset({"Order Completed", "Order Paid"})
# An order's revenue is added to the month's counter only within this bound and to 4 decimals: a
# counter is a DynamoDB number (38 significant digits; ADD refuses a sum that needs more), so one
# absurd amount (1e38 from a unit or parsing error upstream) would fail the whole counter item for
# every later event of the month. Out-of-range amounts are counted as ``revenue_out_of_range``.
MAX_ORDER_AMOUNT = 10**12
# notification / journey detail types → funnel step (types not yet on the bus are simply never seen)
FUNNEL_STEPS = {
    "notification.requested": "requested",
    "notification.sent": "sent",
    "notification.delivered": "delivered",
    "notification.opened": "opened",
    "notification.clicked": "clicked",
    "notification.suppressed": "suppressed",
    "notification.failed": "failed",
    "notification.bounced": "bounced",
    "notification.complained": "complained",
    "journey.converted": "converted",
    "journey.goal_reached": "converted",
}
FUNNEL_ORDER = ("requested", "sent", "delivered", "opened", "clicked", "converted")
FUNNEL_SIDE = ("suppressed", "failed", "bounced", "complained")
DETAIL_TYPES = (
    *FUNNEL_STEPS,
    "event.ingested",
    "ingest.counted",
    "profile.changed",
    "segment.entered",
    "segment.exited",
)


def day(timestamp: str | None) -> str:
    return (timestamp or "")[:10] or "unknown"


def month(timestamp: str | None) -> str:
    return (timestamp or "")[:7] or "unknown"


def previous_month(period: str) -> str:
    when = datetime.strptime(period + "-01", "%Y-%m-%d")
    year, mon = (when.year, when.month - 1) if when.month > 1 else (when.year - 1, 12)
    return f"{year:04d}-{mon:02d}"


@dataclass
class OrderSeen:
    """A counted order: the month's customer markers decide new / returning / retained."""

    tenant: str
    profile_id: str
    period: str
    first_ever: bool


@dataclass
class Increments:
    """Counter additions of a batch, merged per item: ``adds[(tenant, sk)][field] += n``.

    ``sources[(tenant, sk)]`` holds the positions (in the batch) of the events that added to the
    item: every event adds to exactly **one** counter item (a funnel row, a day's ingestion, a
    segment, a month), so when an item's write fails, exactly its events are retried.
    """

    adds: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    sets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    orders: list[OrderSeen] = field(default_factory=list)
    sources: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    position: int = -1  # the event being counted

    def add(self, tenant: str, sk: str, name: str, by: float = 1) -> None:
        self.adds.setdefault((tenant, sk), Counter())[name] += by  # type: ignore[assignment]
        if self.position >= 0:
            self.sources.setdefault((tenant, sk), set()).add(self.position)


def count(detail_type: str, detail: dict[str, Any], into: Increments) -> None:
    """Add one bus event's contribution to ``into`` (unknown types and replays add nothing)."""
    tenant = detail.get("tenant_id")
    if not tenant or detail.get("replay"):
        return
    step = FUNNEL_STEPS.get(detail_type)
    if step:
        journey = detail.get("journey_id") or "(none)"
        channel = detail.get("channel") or "all"
        into.add(tenant, f"FUNNEL#{journey}#{channel}", step)
    elif detail_type == "event.ingested":
        connector = (detail.get("source") or {}).get("connector") or "unknown"
        into.add(
            tenant,
            f"INGEST#{day(detail.get('received_at') or detail.get('timestamp'))}#{connector}",
            "ingested",
        )
    elif detail_type == "ingest.counted":  # ingest's own counts (huiliu.reports.ingest_counts)
        sk = f"INGEST#{detail.get('day') or 'unknown'}#{detail.get('connector') or 'unknown'}"
        if detail.get("ingested"):
            into.add(tenant, sk, "ingested", int(detail["ingested"]))
        for reason, n in (detail.get("rejected") or {}).items():
            into.add(tenant, sk, "rejected", int(n))
            into.add(tenant, sk, f"rejected_{reason}", int(n))
    elif detail_type in ("segment.entered", "segment.exited"):
        segment = detail.get("segment_id") or "unknown"
        entered = detail_type == "segment.entered"
        into.add(tenant, f"SEG#{segment}", "size", 1 if entered else -1)
        into.add(tenant, f"SEG#{segment}", "entered" if entered else "exited")
        into.sets[(tenant, f"SEGDAY#{segment}#{day(detail.get('occurred_at'))}")] = {"segment": segment}
    elif detail_type == "profile.changed":
        _order(tenant, detail, into)


def _order(tenant: str, detail: dict[str, Any], into: Increments) -> None:
    event = detail.get("event") or {}
    changed = (detail.get("changed") or {}).get("computed") or {}
    if event.get("name") not in ORDER_EVENTS or "order_count" not in changed:
        return  # not an order, or an order identity had already counted
    computed = (detail.get("profile") or {}).get("computed") or {}
    period = month(event.get("timestamp"))
    props = event.get("properties") or {}
    amount = props.get("revenue", props.get("total"))
    into.add(tenant, f"MONTH#{period}", "orders")
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        if math.isfinite(amount) and abs(amount) <= MAX_ORDER_AMOUNT:
            into.add(tenant, f"MONTH#{period}", "revenue", round(float(amount), 4))
        else:
            into.add(tenant, f"MONTH#{period}", "revenue_out_of_range")
    into.orders.append(
        OrderSeen(tenant, str(detail.get("profile_id")), period, int(computed.get("order_count") or 1) <= 1)
    )


def rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None
