"""Replay: re-ingest archived raw requests of one tenant in a time range.

The archive yields the tenant's records of the window (``RawArchive.records``, within the replay
window the bucket's lifecycle keeps). Each goes through the same pipeline as the original
delivery, with the clock set to its original ``received_at`` (so signed-timestamp windows still
pass and events keep their receive time) and its ref as ``raw_ref``. Identity's processed marker
drops what was already applied, so a replay after an outage changes only what was lost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from huiliu.ingest.archive import request_from_record
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
    records = pipeline.archive.records(tenant_id, _aware(start), _aware(end), connector)
    for key, record in records:
        report.requests += 1
        if dry_run:
            continue
        try:
            received_at = datetime.fromisoformat(record["received_at"])
            outcome = pipeline.ingest(
                request_from_record(record),
                tenant_id=tenant_id,
                connector=record["connector"],
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
