"""Admin HTTP routes for journeys, mounted by the admin app under ``/admin``.

- ``POST /journeys``                      body: a definition (JSON)   -> publish a new version
- ``POST /journeys/validate``             body: a definition          -> problems or ok (stores nothing)
- ``GET  /journeys``                                                  -> every journey's head
- ``GET  /journeys/{id}``                    -> head, versions, funnel, recent enrollments
- ``GET  /journeys/{id}/funnel``                                      -> the funnel counters
- ``POST /journeys/{id}/pause|resume|archive``
- ``GET  /journeys/why/{profile_id}?journey_id=``                     -> enrollments with their decision log

A refused definition answers 400 ``invalid_journey`` with ``problems: [{path, reason}]``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.errors import BadRequest, Unauthorized

router = APIGatewayHttpRouter()
_deps: dict[str, Any] = {}


def configure(admin: Any | None = None) -> None:
    """Inject a JourneyAdmin (tests); the real one is built lazily."""
    _deps.clear()
    if admin is not None:
        _deps["admin"] = admin


def _admin() -> Any:
    """The injected JourneyAdmin, else one per request: cheap (clients come from huiliu.aws's cache,
    which follows the endpoint and settings of the moment), never one bound to a stale client."""
    if "admin" in _deps:
        return _deps["admin"]
    from huiliu.journeys.admin import JourneyAdmin
    from huiliu.journeys.catalog import build_catalog
    from huiliu.journeys.wiring import build_repository

    return JourneyAdmin(build_repository(), build_catalog)


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


def _document() -> dict[str, Any]:
    body = router.current_event.json_body
    if not isinstance(body, dict):
        raise BadRequest("the body is one journey definition (a JSON object)")
    return body


def _refused(exc: Any) -> Response:
    return Response(
        status_code=400,
        content_type=content_types.APPLICATION_JSON,
        body={"success": False, "code": exc.reason, "message": exc.message, "problems": exc.problems},
    )


@router.post("/journeys")
def apply_journey() -> Any:
    from huiliu.journeys.admin import InvalidDefinition

    try:
        return _admin().apply(_tenant(), _document())
    except InvalidDefinition as exc:
        return _refused(exc)


@router.post("/journeys/validate")
def validate_journey() -> Any:
    from huiliu.journeys.admin import InvalidDefinition

    try:
        return _admin().validate(_tenant(), _document())
    except InvalidDefinition as exc:
        return _refused(exc)


@router.get("/journeys")
def list_journeys() -> dict[str, Any]:
    return {"journeys": _admin().list(_tenant())}


@router.get("/journeys/why/<profile_id>")
def why(profile_id: str) -> dict[str, Any]:
    journey_id = router.current_event.get_query_string_value("journey_id")
    return _admin().why(_tenant(), profile_id, journey_id)


@router.get("/journeys/<journey_id>")
def show_journey(journey_id: str) -> dict[str, Any]:
    return _admin().show(_tenant(), journey_id)


@router.get("/journeys/<journey_id>/funnel")
def funnel(journey_id: str) -> dict[str, Any]:
    return _admin().funnel(_tenant(), journey_id)


@router.post("/journeys/<journey_id>/<action>")
def lifecycle(journey_id: str, action: str) -> dict[str, Any]:
    if action not in ("pause", "resume", "archive"):
        raise BadRequest(f"unknown action {action!r}: pause, resume or archive", reason="bad_action")
    return getattr(_admin(), action)(_tenant(), journey_id)
