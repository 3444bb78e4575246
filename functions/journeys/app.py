"""Journeys function: segment.entered|exited and profile.changed|merged|erased (via SQS) ->
enrol, exit at once, resume waits for an event (huiliu.journeys.service).

A record that fails fails alone (partial batch response); redelivery is a no-op (enrollment keys,
revisions and applied-event ids; actions carry deterministic ids).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from huiliu.observability import bind_correlation, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from huiliu.journeys.service import JourneysService

processor = BatchProcessor(event_type=EventType.SQS)
_deps: dict[str, Any] = {}
ACCEPTS = ("segment.entered", "segment.exited", "profile.changed", "profile.merged", "profile.erased")


def configure(service: JourneysService | None = None) -> None:
    """Inject the service (tests, local runtime); the real one is built on first use."""
    _deps.clear()
    if service is not None:
        _deps["service"] = service


def _service() -> JourneysService:
    if "service" not in _deps:
        from huiliu.journeys.wiring import build_service

        _deps["service"] = build_service()
    return _deps["service"]


def record_handler(record: SQSRecord) -> None:
    envelope = json.loads(record.body)
    detail_type = envelope.get("detail-type")
    detail = envelope.get("detail") or {}
    bind_correlation(detail.get("correlation_id"), tenant_id=detail.get("tenant_id"))
    if detail_type not in ACCEPTS:
        logger.info("skipped", extra={"detail_type": detail_type})
        return
    outcome = _service().handle_detail(detail_type, detail)
    if outcome is not None:
        logger.info(
            "journeys",
            extra={"detail_type": detail_type, "committed": outcome.committed, "actions": outcome.actions},
        )
        metrics.add_metric(name="JourneyTransitions", unit="Count", value=outcome.committed)
        metrics.add_metric(name="JourneyActions", unit="Count", value=outcome.actions)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
