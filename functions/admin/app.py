"""Admin API Lambda (HttpApi ``/admin/{proxy+}``): one authenticated, documented surface.

Routers are mounted from the modules that own them (``_mount_routers``); the resolver, the error
shape, ``/admin/openapi.json`` and ``/admin/docs`` come from ``huiliu.adminapi.core``; a request is
authenticated by its bearer key and checked against the key's scope before it is routed.
See docs/admin.md.
"""

from __future__ import annotations

from typing import Any

from huiliu.adminapi.core import build_app, resolve
from huiliu.observability import bind_http_correlation, logger, metrics, tracer

app = build_app()


def _mount_routers() -> None:
    from huiliu.adminapi.routes_keys import router as keys_router
    from huiliu.adminapi.routes_tenant import router as tenant_router
    from huiliu.identity.admin_routes import router as profiles_router
    from huiliu.journeys.admin_routes import router as journeys_router
    from huiliu.notify.admin_routes import router as templates_router
    from huiliu.reports.admin_routes import router as reports_router
    from huiliu.segments.admin_routes import router as segments_router

    for router in (
        tenant_router,
        keys_router,
        profiles_router,
        segments_router,
        journeys_router,
        templates_router,
        reports_router,
    ):
        app.include_router(router)
        _routers.append(router)


_routers: list[Any] = []
_mount_routers()


def authenticate(authorization: str | None) -> Any:
    from huiliu.adminapi.wiring import authenticator

    key = authenticator().authenticate(authorization)
    logger.append_keys(tenant_id=key.tenant_id, key_id=key.key_id)
    return key


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_http_correlation(event)
    metrics.add_metric(name="admin_requests", unit="Count", value=1)
    # A router serves the app that included it last; routers are module-level objects, so where
    # more than one admin app lives in a process (tests, the local runtime reloading handlers)
    # each request points them back at this app (its context holds the authenticated tenant).
    for router in _routers:
        router.api_resolver = app
    return resolve(app, event, context, authenticate)
