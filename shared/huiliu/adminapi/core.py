"""The admin resolver: Powertools event handler with data validation, one OpenAPI document, one error shape.

Every admin route is declared with type hints (path/query parameters with ``Annotated[..., Query()]``,
a pydantic body model, a pydantic return type). Powertools validates requests against them and
generates the OpenAPI document from them; this module

- builds the resolver (``build_app``) with the exception handlers that turn every failure into
  :class:`ErrorBody` (``{"success": false, "code", "message", "errors": [{"field", "reason"}]}``);
- serves ``GET /admin/openapi.json`` and a self-contained Swagger UI at ``GET /admin/docs``
  (Powertools' bundled swagger-ui JS/CSS inlined: no external assets);
- gives routers ``tenant_of(router)`` (the tenant the caller's key belongs to) and ``ERRORS``
  (the documented error responses to pass as ``responses=``).

Request-validation failures answer **400** ``invalid_request`` naming each field
(``body.value``, ``query.limit`` …); the OpenAPI document says so (Powertools' generic 422 entry is
replaced by the shared error shape).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from huiliu.errors import BadRequest, HuiliuError, Unauthorized

API_TITLE = "Huiliu admin API"
API_VERSION = "1"
PREFIX = "/admin"
# Paths (after the /admin prefix) served without a key.
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs"})
# Largest admin request body (bytes); a definition or a settings document fits easily.
MAX_BODY_BYTES = 256 * 1024
# Deepest JSON nesting accepted in a body (DynamoDB stores at most 32 levels).
MAX_BODY_DEPTH = 24


class FieldError(BaseModel):
    field: str = Field(description="where: body.<path>, query.<name>, path.<name>")
    reason: str


class Problem(BaseModel):
    path: str = Field(description="where in the definition, e.g. steps[0].next, vip:condition.all[1]")
    reason: str


class ErrorBody(BaseModel):
    """The one error shape of every admin route."""

    success: Literal[False] = False
    code: str = Field(description="stable machine-readable reason, e.g. invalid_request, not_found")
    message: str
    errors: list[FieldError] = Field(default_factory=list)
    problems: list[Problem] | None = Field(
        default=None,
        description="400 from a stage's definition validator (segments, journeys, templates): every "
        "problem with its path; absent otherwise",
    )


def _error_response(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


# Pass as ``responses=ERRORS`` on every route: 200 takes its schema from the route's return type.
ERRORS: dict[int, OpenAPIResponse] = {
    200: {"description": "OK"},
    400: _error_response("Invalid request: malformed JSON, unknown field, wrong type (fields named)"),
    401: _error_response("Missing or invalid key"),
    403: _error_response("The key's scope does not allow this"),
    404: _error_response("Not found (also for another tenant's data)"),
    409: _error_response("Conflict with the current state"),
    413: _error_response("Request body too large"),
}


def error(
    status: int,
    code: str,
    message: str,
    errors: Iterable[FieldError] = (),
    problems: Iterable[dict[str, Any]] | None = None,
) -> Response:
    body = ErrorBody(
        code=code,
        message=message,
        errors=list(errors),
        problems=[Problem.model_validate(p) for p in problems] if problems is not None else None,
    )
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(exclude_none=True),
    )


def field_errors(raw: Iterable[dict[str, Any]]) -> list[FieldError]:
    """Powertools/pydantic error dicts → ``[FieldError]`` with short reasons (no documentation URLs)."""
    out = []
    for item in raw:
        loc = [str(p) for p in item.get("loc", ())]
        # Powertools puts the body's parameter name after "body" for embedded bodies: drop it
        where = ".".join(loc) or "body"
        reason = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(FieldError(field=where, reason=reason))
    return out


def tenant_of(router: Any) -> str:
    """The tenant of the caller's key (put on the context by the admin handler before routing)."""
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request", reason="missing_credentials")
    return str(tenant)


def build_app(
    *, routers: Iterable[Any] = (), prefix: str = PREFIX, documented: Callable[[], Any] | None = None
) -> Any:
    """The admin resolver with validation, error handlers, /openapi.json and /docs.

    ``documented`` gives the resolver the document describes when it is not this one (the admin
    app mounts its routers lazily and documents a resolver with all of them: huiliu.adminapi.mount)."""
    # An answer that does not fit its route's response model is our bug, not the caller's: 500
    # (logged with the fields), never the 400 Powertools would otherwise answer.
    app = APIGatewayHttpResolver(
        strip_prefixes=[prefix], enable_validation=True, response_validation_error_http_code=500
    )

    def described() -> Any:
        return documented() if documented is not None else app

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        problems = field_errors(exc.errors())
        summary = "; ".join(f"{p.field}: {p.reason}" for p in problems[:10])
        code = "invalid_json" if any(p.reason.startswith("JSON") for p in problems) else "invalid_request"
        return error(400, code, f"invalid request: {summary}", problems)

    @app.exception_handler(ResponseValidationError)
    def _bad_answer(exc: ResponseValidationError) -> Response:
        from huiliu.observability import logger

        problems = field_errors(exc.errors())
        logger.error(
            "admin answer breaks its response model", extra={"errors": [p.model_dump() for p in problems]}
        )
        return error(500, "internal_error", "the answer did not fit its documented shape (logged)")

    @app.exception_handler(HuiliuError)
    def _domain(exc: HuiliuError) -> Response:
        return error(exc.status, exc.reason, exc.message, problems=getattr(exc, "problems", None))

    @app.not_found
    def _not_found(_: Exception) -> Response:
        return error(404, "not_found", "no such route")

    @app.get("/openapi.json", include_in_schema=False)
    def _openapi():
        document = openapi_document(described(), prefix)
        return Response(200, content_types.APPLICATION_JSON, json.dumps(document))

    @app.get("/docs", include_in_schema=False)
    def _docs():
        return Response(200, "text/html; charset=utf-8", swagger_page(described(), prefix))

    for router in routers:
        app.include_router(router)
    return app


def _raw(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": ErrorBody(code=code, message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


def check_body(body: str | bytes, base64: bool) -> None:
    """Bodies nested beyond MAX_BODY_DEPTH (json itself gives up at ~1,000 levels) or holding what
    DynamoDB cannot store (numbers beyond 38 digits, 1e400, lone surrogates) are a 400 before any
    route sees them; a body that is not JSON is left to the route's validation (400 invalid_json)."""
    import base64 as b64

    from huiliu.connectors.limits import check_value

    text = b64.b64decode(body) if base64 else body
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise BadRequest("body is nested too deep", reason="too_deep") from exc
    except ValueError:
        return
    check_value(value, "body", max_depth=MAX_BODY_DEPTH)


def route_path(event: dict[str, Any]) -> str:
    path = event.get("rawPath") or (event.get("requestContext") or {}).get("http", {}).get("path") or "/"
    return path[len(PREFIX) :] or "/" if path.startswith(PREFIX) else path


def resolve(
    app: Any,
    event: dict[str, Any],
    context: Any,
    authenticate: Callable[[str | None], Any],
    mount: Callable[[str], None] | None = None,
) -> Any:
    """Gate, then route: size limit, key, scope (before any validation, so an unauthenticated
    caller learns nothing about a route), then Powertools resolves with the key on the context.
    ``mount(path)`` mounts the routers serving the path, once the caller has passed the gate."""
    from huiliu.adminapi.auth import Forbidden, required_scope

    path = route_path(event)
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET").upper()
    if path in PUBLIC_PATHS and method == "GET":
        return app.resolve(event, context)
    body = event.get("body") or ""
    limit = MAX_BODY_BYTES * 4 // 3 + 4 if event.get("isBase64Encoded") else MAX_BODY_BYTES
    if len(body.encode() if isinstance(body, str) else body) > limit:
        return _raw(413, "payload_too_large", f"request body over {MAX_BODY_BYTES} bytes")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        key = authenticate(headers.get("authorization"))
        needed = required_scope(method, path)
        if not key.allows(needed):
            raise Forbidden(f"this key's scope is {key.scope}; {method} {path} needs {needed}")
        if body:
            check_body(body, bool(event.get("isBase64Encoded")))
    except HuiliuError as exc:
        return _raw(exc.status, exc.reason, exc.message)
    if mount is not None:
        mount(path)
    app.append_context(tenant_id=key.tenant_id, key_id=key.key_id, scope=key.scope)
    return app.resolve(event, context)


def openapi_document(app: Any, prefix: str = PREFIX) -> dict[str, Any]:
    """The OpenAPI document of every mounted route, with the shared error shape on 400."""
    from aws_lambda_powertools.event_handler.openapi.models import Server

    raw = app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "One authenticated surface for everything Huiliu's stages manage. Authenticate with "
            "`Authorization: Bearer <key>`; a key belongs to one tenant and has a scope "
            "(read < write < admin). Errors share one shape (ErrorBody)."
        ),
        servers=[Server(url=prefix)],
        security_schemes=(
            {"bearer": {"type": "http", "scheme": "bearer"}}  # type: ignore[dict-item]
            if prefix == PREFIX
            else {"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header"}}  # type: ignore[dict-item]
        ),
        security=[{"bearer": []}] if prefix == PREFIX else [{"sigv4": []}],
    )
    doc = json.loads(raw)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
    schemas.setdefault("FieldError", FieldError.model_json_schema())
    schemas.setdefault("Problem", Problem.model_json_schema())
    schemas["ErrorBody"].pop("$defs", None)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for methods in doc.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            # we answer request-validation failures with 400 ErrorBody, never 422
            responses.pop("422", None)
            # the gate can answer any route with these, whether the route declares them or not
            for status, spec in ERRORS.items():
                if status != 200 and str(status) not in responses:
                    responses[str(status)] = {"description": spec["description"], "content": ref}
    still_used = "HTTPValidationError" in json.dumps(doc.get("paths", {}))
    if not still_used:
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return doc


def swagger_page(app: Any, prefix: str = PREFIX) -> str:
    """Swagger UI with its JS and CSS inlined (Powertools ships them): works offline."""
    from pathlib import Path

    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    folder = Path(swagger.__file__).parent
    js = (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    css = (folder / "swagger-ui.min.css").read_text(encoding="utf-8")
    spec = json.dumps(openapi_document(app, prefix)).replace("</", "<\\/")
    return generate_swagger_html(spec, js, css, "", None, persist_authorization=False)


def iam_resolve(app: Any, event: dict[str, Any], context: Any) -> Any:
    """The ops gate: API Gateway's AWS_IAM authorizer verified the caller's SigV4 signature and put
    the IAM identity on the request; without it (a misconfigured route) nothing is served."""
    iam = ((event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    if not iam.get("userArn") and not iam.get("accessKey"):
        return _raw(403, "iam_required", "ops routes need AWS IAM (SigV4) authentication")
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        return _raw(413, "payload_too_large", f"request body over {MAX_BODY_BYTES} bytes")
    from huiliu.observability import logger

    logger.append_keys(operator=iam.get("userArn") or iam.get("accessKey"))
    return app.resolve(event, context)
