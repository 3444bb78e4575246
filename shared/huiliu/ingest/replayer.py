"""Replay: re-ingest archived raw requests of one tenant in a time range.

Each archived request goes through the same pipeline as the original delivery, with the clock set
to its original ``received_at`` (so signed-timestamp windows still pass and events keep their
receive time) and its archive key as ``raw_ref``. Dedupe applies unless ``force`` is given, so a
replay after an outage publishes only what was lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from huiliu.ingest.archive import PREFIX, RawArchive, request_from_record
from huiliu.ingest.pipeline import CONNECTORS, IngestPipeline


@dataclass
class ReplayReport:
    tenant_id: str
    start: str
    end: str
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def archived_keys(
    archive: RawArchive, tenant_id: str, start: datetime, end: datetime, connector: str | None = None
) -> Iterator[tuple[str, str]]:
    """(connector, key) of archived requests received in [start, end], oldest first per connector."""
    start, end = _aware(start).astimezone(UTC), _aware(end).astimezone(UTC)
    if connector:
        connectors = [connector]
    else:
        base = f"{PREFIX}/{tenant_id}/"
        connectors = sorted(p[len(base) :].rstrip("/") for p in archive.list_prefixes(base))
    for name in connectors:
        day = start.date()
        while day <= end.date():
            prefix = f"{PREFIX}/{tenant_id}/{name}/{day:%Y/%m/%d}/"
            for key in archive.list_keys(prefix):
                stamp = key[len(prefix) : len(prefix) + 6]
                if not (stamp.isascii() and stamp.isdigit()):
                    continue
                at = datetime.combine(day, time(int(stamp[:2]), int(stamp[2:4]), int(stamp[4:6])), tzinfo=UTC)
                if start.replace(microsecond=0) <= at <= end:
                    yield name, key
            day += timedelta(days=1)


def replay(
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    connector: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    pipeline: IngestPipeline | None = None,
) -> ReplayReport:
    """Re-ingest a tenant's archived requests received between ``start`` and ``end`` (inclusive)."""
    if connector is not None and connector not in CONNECTORS:
        raise ValueError(f"unknown connector {connector!r}; one of {sorted(CONNECTORS)}")
    if pipeline is None:
        from huiliu.ingest.pipeline import build_pipeline

        pipeline = build_pipeline()
    report = ReplayReport(tenant_id, _aware(start).isoformat(), _aware(end).isoformat(), dry_run=dry_run)
    for name, key in archived_keys(pipeline.archive, tenant_id, start, end, connector):
        report.requests += 1
        if dry_run:
            continue
        try:
            record = pipeline.archive.get(key)
            received_at = datetime.fromisoformat(record["received_at"])
            outcome = pipeline.ingest(
                request_from_record(record),
                tenant_id=tenant_id,
                connector=name,
                now=received_at,
                force=force,
                raw_ref=key,
            )
        except (KeyError, ValueError) as exc:
            report.failed.append({"key": key, "error": f"unreadable archive record: {exc}"})
            continue
        if outcome.error:
            report.failed.append({"key": key, "error": outcome.error})
        report.accepted += len(outcome.accepted)
        report.duplicates += outcome.duplicates
    return report
