"""Segment evaluation (issue to come): receives profile events.

Wired in template.yaml with its queue, DLQ and ReportBatchItemFailures; until its stage lands it
logs each event with its correlation id and acknowledges it (see huiliu.passthrough).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from huiliu.observability import logger, metrics, tracer
from huiliu.passthrough import record_handler

processor = BatchProcessor(event_type=EventType.SQS)
_handle = record_handler("segments")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=_handle, processor=processor, context=context)
