"""Scheduled sweep of time-based segment conditions (issue to come).

Wired in template.yaml as a ScheduleV2 target; the local runtime fires it from its movable clock.
Until its stage lands it logs the tick time it was asked to process.
"""

from __future__ import annotations

from typing import Any

from huiliu.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tick = event.get("time")
    logger.info("tick", extra={"tick": tick})
    metrics.add_metric(name="ticks", unit="Count", value=1)
    return {"tick": tick}
