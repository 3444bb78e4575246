"""Handlers for the stages whose logic is not built yet (segments, journeys, notify, feedback,
segment sweep, journey tick).

They are fully wired — queue, DLQ, ReportBatchItemFailures, schedules — and receive, log with the
correlation id, count and acknowledge, so the wiring is exercised end to end. Later issues replace
each with its real stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from huiliu.observability import bind_correlation, logger, metrics, tracer

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def record_handler(stage: str) -> Callable[[Any], None]:
    def handle(record: Any) -> None:
        from huiliu.envelopes import parse_eventbridge_body  # pydantic: first record, not import

        envelope = parse_eventbridge_body(record.body)
        bind_correlation(envelope.correlation_id, tenant_id=envelope.tenant_id)
        logger.info(
            "received",
            extra={"stage": stage, "detail_type": envelope.detail_type, "source": envelope.source},
        )
        metrics.add_metric(name=f"{stage}_received", unit="Count", value=1)

    return handle


def queue_handler(stage: str) -> Handler:
    """An SQS consumer: bus events in, a partial batch response out (bad records fail alone)."""
    processor = BatchProcessor(event_type=EventType.SQS)
    handle = record_handler(stage)

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
        )

    return handler


def schedule_handler(stage: str) -> Handler:
    """A scheduled tick: logs the time it was asked to process."""

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        tick = event.get("time")
        logger.info("tick", extra={"stage": stage, "tick": tick})
        metrics.add_metric(name=f"{stage}_ticks", unit="Count", value=1)
        return {"tick": tick}

    return handler
