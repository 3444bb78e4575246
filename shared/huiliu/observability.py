"""Powertools Logger / Tracer / Metrics, set up once for every function.

``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml) names the service; the metrics
namespace is ``Huiliu``. The correlation id starts at the webhook (API Gateway request id, or the
caller's ``X-Correlation-Id``) and travels inside every bus event, so one grep follows one event
through ingest → identity → segments → journeys → notify.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Huiliu")

logger = Logger()
tracer = Tracer()
metrics = Metrics()

CORRELATION_HEADER = "x-correlation-id"


def bind_correlation(correlation_id: str | None, **keys: Any) -> None:
    """Attach the event's correlation id (and e.g. tenant) to every following log line."""
    if correlation_id:
        logger.set_correlation_id(correlation_id)
    if keys:
        logger.append_keys(**{k: v for k, v in keys.items() if v is not None})
