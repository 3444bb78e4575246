"""Archive erasure: ``archive.erase_requested`` (via SQS) → the person's raw requests leave the archive.

Identity's erase publishes the refs of the person's archived requests (from their timeline items,
within the replay window) in chunks of ≤ 500. The queue delays each message by 120 s, longer than
the archive stream's 60 s buffer, so every named record has reached S3. Each object holding one of
the refs is rewritten without those records and its older versions are deleted (the bucket is
versioned): no copy stays readable. Refs of another tenant are ignored. See docs/cost.md, README
("Erasure").
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from huiliu.observability import bind_correlation, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

processor = BatchProcessor(event_type=EventType.SQS)
_deps: dict[str, Any] = {}


def configure(archive: Any | None = None) -> None:
    """Inject the archive (tests); the real one is built on first use."""
    _deps.clear()
    if archive is not None:
        _deps["archive"] = archive


def _archive() -> Any:
    if "archive" not in _deps:
        from huiliu.ingest.archive import FirehoseArchive
        from huiliu.settings import get_settings

        settings = get_settings()
        _deps["archive"] = FirehoseArchive(settings.raw_archive_stream, settings.raw_bucket)
    return _deps["archive"]


def record_handler(record: SQSRecord) -> None:
    from huiliu.ingest.archive import ref_tenant

    detail = json.loads(record.body).get("detail") or {}
    tenant = str(detail.get("tenant_id") or "")
    bind_correlation(detail.get("correlation_id"), tenant_id=tenant)
    refs = [str(r) for r in detail.get("raw_refs") or [] if ref_tenant(str(r)) == tenant]
    report = _archive().erase(refs)
    logger.info(
        "archive erased",
        extra={
            "refs": report.refs,
            "objects_read": report.objects_read,
            "objects_rewritten": report.objects_rewritten,
            "records_removed": report.records_removed,
            "versions_deleted": report.versions_deleted,
            "not_found": len(report.not_found),  # expired already (older than the replay window)
        },
    )
    metrics.add_metric(name="ArchiveRecordsErased", unit="Count", value=report.records_removed)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
