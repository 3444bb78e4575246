"""Ops API Lambda (HttpApi ``/ops/{proxy+}``, AWS_IAM authorizer): operator routes across tenants.

API Gateway verifies the caller's SigV4 signature before invoking this function and passes the IAM
identity in ``requestContext.authorizer.iam``; a request without it is refused (defence in depth:
the route must never be reachable without the authorizer). See huiliu.adminapi.routes_ops.
"""

from __future__ import annotations

from typing import Any

from huiliu import stage
from huiliu.adminapi import wiring
from huiliu.adminapi.core import build_app, iam_resolve
from huiliu.adminapi.routes_ops import router as ops_router
from huiliu.observability import bind_http_correlation, logger, metrics, tracer

# The key service and authenticator on the admin API's stage slot (huiliu.adminapi.wiring).
stage.register(wiring.STAGE, wiring.AdminServices)

app = build_app(routers=[ops_router], prefix="/ops")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_http_correlation(event)
    metrics.add_metric(name="ops_requests", unit="Count", value=1)
    return iam_resolve(app, event, context)
