"""Identity function: ``event.ingested`` (via SQS) -> one profile per person.

Each SQS body is an EventBridge event whose ``detail`` is a CanonicalEvent. A record that fails
fails alone (partial batch response); redelivery is a no-op thanks to the processed marker.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from huiliu.observability import bind_correlation, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from huiliu.bus import Publisher
    from huiliu.identity.service import IdentityService

processor = BatchProcessor(event_type=EventType.SQS)
_deps: dict[str, Any] = {}


def configure(service: IdentityService | None = None, publisher: Publisher | None = None) -> None:
    """Inject collaborators (tests, local runtime); the real ones are built on first use."""
    _deps.clear()
    if service is not None:
        _deps["service"] = service
    if publisher is not None:
        _deps["publisher"] = publisher


def _service() -> IdentityService:
    if "service" not in _deps:
        from huiliu.identity.wiring import build_service

        _deps["service"] = build_service()
    return _deps["service"]


def _publisher() -> Publisher:
    if "publisher" not in _deps:
        from huiliu.bus import EventBridgePublisher
        from huiliu.settings import get_settings

        _deps["publisher"] = EventBridgePublisher(get_settings().event_bus_name)
    return _deps["publisher"]


def record_handler(record: SQSRecord) -> None:
    from huiliu.models import CanonicalEvent

    envelope = json.loads(record.body)
    event = CanonicalEvent.model_validate(envelope.get("detail", envelope))
    bind_correlation(event.correlation_id, tenant_id=event.tenant_id, message_id=event.message_id)
    outcome = _service().process(event)
    logger.info(
        "identity resolved",
        extra={"status": outcome.status, "profile_id": outcome.profile_id, "merged": outcome.merged},
    )
    if outcome.events:
        _publisher().publish(outcome.events)
    metrics.add_metric(name=f"Identity_{outcome.status}", unit="Count", value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
