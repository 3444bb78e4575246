"""Admin API Lambda (HttpApi ``/admin/{proxy+}``): authenticated per tenant by a bearer admin key.

Routes are mounted from the stages that own them (profiles: huiliu.identity.admin_routes); domain
errors map to HTTP responses in one place (``_domain_error``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from huiliu.errors import HuiliuError
from huiliu.observability import CORRELATION_HEADER, bind_correlation, logger, metrics, tracer

app = APIGatewayHttpResolver(strip_prefixes=["/admin"])
_auth: Any = None


def authenticator() -> Any:
    global _auth
    if _auth is None:
        from huiliu.admin_auth import AdminAuthenticator
        from huiliu.settings import get_settings
        from huiliu.tenants import TenantRepository

        settings = get_settings()
        _auth = AdminAuthenticator(TenantRepository(settings.tenants_table), settings.hash_salt)
    return _auth


def _error(status: int, reason: str, message: str) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"success": False, "code": reason, "message": message},
    )


def require_tenant(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    try:
        tenant = authenticator().tenant_for(app.current_event.headers.get("authorization"))
    except HuiliuError as exc:
        return _error(exc.status, exc.reason, exc.message)
    app.append_context(tenant_id=tenant)
    logger.append_keys(tenant_id=tenant)
    return next_middleware(app)


app.use(middlewares=[require_tenant])


@app.exception_handler(HuiliuError)
def _domain_error(exc: HuiliuError) -> Response:
    return _error(exc.status, exc.reason, exc.message)


@app.exception_handler(ValueError)
def _bad_value(exc: ValueError) -> Response:
    return _error(400, "bad_request", str(exc))


@app.get("/tenant")
def get_tenant() -> dict[str, Any]:
    """The authenticated tenant's settings (never its secrets)."""
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantRepository

    tenant_id = app.context["tenant_id"]
    settings = TenantRepository(get_settings().tenants_table).get_settings(tenant_id)
    return {"tenant": settings.model_dump(mode="json") if settings else {"tenant_id": tenant_id}}


def _mount_routers() -> None:
    from huiliu.identity.admin_routes import router as profiles_router
    from huiliu.journeys.admin_routes import router as journeys_router
    from huiliu.segments.admin_routes import router as segments_router

    app.include_router(profiles_router)
    app.include_router(segments_router)
    app.include_router(journeys_router)


_mount_routers()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = event.get("headers") or {}
    request_id = (event.get("requestContext") or {}).get("requestId")
    bind_correlation(headers.get(CORRELATION_HEADER) or request_id)
    metrics.add_metric(name="admin_requests", unit="Count", value=1)
    return app.resolve(event, context)
