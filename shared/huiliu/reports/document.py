"""The report document (JSON of ``GET /admin/reports``), assembled from the counter items. Pure."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from pydantic import BaseModel, Field

from huiliu.reports.counters import FUNNEL_ORDER, FUNNEL_SIDE, previous_month, rate


class FunnelRow(BaseModel):
    journey_id: str
    channel: str
    counts: dict[str, int]
    rates: dict[str, float | None] = Field(description="each step / the step before it; *_of_requested too")


class SegmentSeries(BaseModel):
    segment_id: str
    size: int
    entered: int
    exited: int
    series: list[tuple[str, int]] = Field(description="[day, size at the day's last change]")


class MonthRow(BaseModel):
    month: str
    orders: int
    revenue: float
    customers: int
    new_customers: int
    returning_customers: int
    retained: int
    repurchase_rate: float | None = Field(description="retained / customers of the month before")


class IngestRow(BaseModel):
    day: str
    connector: str
    ingested: int = Field(description="events accepted (new, not duplicates)")
    rejected: int = Field(
        default=0,
        description="requests refused with a 4xx/503 once the tenant was known; for csv-import, rows "
        "refused (and files refused as a whole)",
    )
    rejected_by_reason: dict[str, int] = Field(
        default_factory=dict,
        description="invalid_signature, invalid_payload, payload_too_large, ...; csv-import: "
        "no_identifier, invalid_timestamp, column_count, ..., file_<reason>",
    )


class ReportDocument(BaseModel):
    tenant_id: str
    funnels: list[FunnelRow]
    segments: list[SegmentSeries]
    customers: list[MonthRow]
    ingestion: list[IngestRow]


def _int(value: Any) -> int:
    return int(value or 0)


def build(tenant: str, items: list[dict[str, Any]]) -> ReportDocument:
    funnels: list[FunnelRow] = []
    segments: dict[str, dict[str, Any]] = {}
    days: dict[str, list[tuple[str, int]]] = {}  # segment -> (day, size)
    months: dict[str, dict[str, Any]] = {}
    ingest: list[IngestRow] = []
    for item in items:
        sk = str(item["sk"])
        kind, _, rest = sk.partition("#")
        if kind == "FUNNEL":
            journey, _, channel = rest.rpartition("#")
            counts = {step: _int(item.get(step)) for step in (*FUNNEL_ORDER, *FUNNEL_SIDE)}
            rates: dict[str, float | None] = {}
            for before, after in pairwise(FUNNEL_ORDER):
                rates[f"{after}_per_{before}"] = rate(counts[after], counts[before])
            for step in FUNNEL_ORDER[1:]:
                rates[f"{step}_of_requested"] = rate(counts[step], counts["requested"])
            funnels.append(FunnelRow(journey_id=journey, channel=channel, counts=counts, rates=rates))
        elif kind == "SEG":
            segments[rest] = item
        elif kind == "SEGDAY":
            segment, _, when = rest.rpartition("#")
            days.setdefault(segment, []).append((when, _int(item.get("size"))))
        elif kind == "MONTH":
            months[rest] = item
        elif kind == "INGEST":
            when, _, connector = rest.partition("#")
            reasons = {
                str(k).removeprefix("rejected_"): _int(v)
                for k, v in item.items()
                if str(k).startswith("rejected_")
            }
            ingest.append(
                IngestRow(
                    day=when,
                    connector=connector,
                    ingested=_int(item.get("ingested")),
                    rejected=_int(item.get("rejected")),
                    rejected_by_reason=dict(sorted(reasons.items())),
                )
            )
    month_rows = []
    for period in sorted(months):
        item = months[period]
        previous = months.get(previous_month(period)) if period != "unknown" else None
        month_rows.append(
            MonthRow(
                month=period,
                orders=_int(item.get("orders")),
                revenue=float(item.get("revenue") or 0),
                customers=_int(item.get("customers")),
                new_customers=_int(item.get("new_customers")),
                returning_customers=_int(item.get("returning_customers")),
                retained=_int(item.get("retained")),
                repurchase_rate=rate(_int(item.get("retained")), _int(previous.get("customers")))
                if previous
                else None,
            )
        )
    series = [
        SegmentSeries(
            segment_id=segment,
            size=_int(item.get("size")),
            entered=_int(item.get("entered")),
            exited=_int(item.get("exited")),
            series=sorted(days.get(segment, [])),
        )
        for segment, item in sorted(segments.items())
    ]
    return ReportDocument(
        tenant_id=tenant,
        funnels=sorted(funnels, key=lambda f: (f.journey_id, f.channel)),
        segments=series,
        customers=month_rows,
        ingestion=sorted(ingest, key=lambda r: (r.day, r.connector)),
    )
