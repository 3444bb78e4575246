"""Admin API Lambda (HttpApi ``/admin/{proxy+}``): one authenticated, documented surface.

Routers are mounted, when a request first needs them, from the modules that own them
(``huiliu.adminapi.mount.ADMIN_ROUTERS``); the resolver, the error
shape, ``/admin/openapi.json`` and ``/admin/docs`` come from ``huiliu.adminapi.core``; a request is
authenticated by its bearer key and checked against the key's scope before it is routed.
See docs/admin.md.
"""

from __future__ import annotations

from typing import Any

from huiliu import stage
from huiliu.adminapi import wiring
from huiliu.adminapi.core import build_app, resolve
from huiliu.adminapi.mount import ADMIN_ROUTERS, LazyRouters
from huiliu.observability import bind_http_correlation, logger, metrics, tracer

# The admin API's collaborators (key authenticator, each router's admin service, the publisher):
# one stage slot, injected with stage.configure("admin", ...) like every stage (adminapi.wiring).
stage.register(wiring.STAGE, wiring.AdminServices)

# Routers are mounted when a request first needs them (huiliu.adminapi.mount: a cold start imports
# only the route module it serves); /openapi.json and /docs describe every router.
app = build_app(documented=lambda: routers.document_app())
routers: LazyRouters = LazyRouters(app, ADMIN_ROUTERS, build_app)


def authenticate(authorization: str | None) -> Any:
    key = wiring.authenticator().authenticate(authorization)
    logger.append_keys(tenant_id=key.tenant_id, key_id=key.key_id)
    return key


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_http_correlation(event)
    metrics.add_metric(name="admin_requests", unit="Count", value=1)
    routers.point_at_app()
    return resolve(app, event, context, authenticate, mount=routers.mount_for)
