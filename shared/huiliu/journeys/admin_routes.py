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

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS
from huiliu.errors import BadRequest, Unauthorized
from huiliu.journeys.admin_models import (
    JourneyFunnel,
    JourneyList,
    JourneyPublished,
    JourneyStatus,
    JourneyValid,
    JourneyView,
    JourneyWhy,
)

router = APIGatewayHttpRouter()
TAGS = ["journeys"]
RESPONSES: Any = ERRORS  # documents 200 (the return type) and the shared error shape
JourneyId = Annotated[str, Path(min_length=1, max_length=128, description="the journey's id")]
ProfileId = Annotated[str, Path(min_length=1, max_length=128, description="a profile id")]
JourneyDocument = Annotated[
    dict[str, Any],
    Body(
        description="One journey definition (docs/journeys.md: id, trigger, steps, goal, exit, "
        "reentry …). Checked here: 400 invalid_journey with problems[{path, reason}].",
        examples=[
            {
                "id": "winback",
                "trigger": {"segment_entered": "dormant_90_days"},
                "steps": [{"id": "mail", "type": "send", "channel": "email", "template": "winback-email"}],
            }
        ],
    ),
]


def _build_admin() -> Any:
    from huiliu.journeys.admin import JourneyAdmin
    from huiliu.journeys.catalog import build_catalog
    from huiliu.journeys.wiring import build_repository

    return JourneyAdmin(build_repository(), build_catalog)


def _admin() -> Any:
    """The JourneyAdmin on the admin slot (huiliu.adminapi.wiring: injected, else built on first use;
    rebuilt with fresh clients when the settings change)."""
    from huiliu.adminapi.wiring import services

    return services().get("journeys", _build_admin)


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


def _document(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the body is one journey definition (a JSON object)")
    return body


@router.post("/journeys", tags=TAGS, responses=RESPONSES, summary="Publish a journey (a new version)")
def apply_journey(body: JourneyDocument) -> JourneyPublished:
    return JourneyPublished.model_validate(_admin().apply(_tenant(), _document(body)))


@router.post("/journeys/validate", tags=TAGS, responses=RESPONSES, summary="Check a journey (stores nothing)")
def validate_journey(body: JourneyDocument) -> JourneyValid:
    return JourneyValid.model_validate(_admin().validate(_tenant(), _document(body)))


@router.get("/journeys", tags=TAGS, responses=RESPONSES, summary="Every journey's head")
def list_journeys() -> JourneyList:
    return JourneyList.model_validate({"journeys": _admin().list(_tenant())})


@router.get(
    "/journeys/why/<profile_id>", tags=TAGS, responses=RESPONSES, summary="A person's enrollments, decisions"
)
def why(
    profile_id: ProfileId,
    journey_id: Annotated[str | None, Query(max_length=128, description="only this journey")] = None,
) -> JourneyWhy:
    return JourneyWhy.model_validate(_admin().why(_tenant(), profile_id, journey_id))


@router.get("/journeys/<journey_id>", tags=TAGS, responses=RESPONSES, summary="Head, versions, funnel")
def show_journey(journey_id: JourneyId) -> JourneyView:
    return JourneyView.model_validate(_admin().show(_tenant(), journey_id))


@router.get("/journeys/<journey_id>/funnel", tags=TAGS, responses=RESPONSES, summary="The funnel counters")
def funnel(journey_id: JourneyId) -> JourneyFunnel:
    return JourneyFunnel.model_validate(_admin().funnel(_tenant(), journey_id))


@router.post(
    "/journeys/<journey_id>/<action>", tags=TAGS, responses=RESPONSES, summary="Pause, resume, archive"
)
def lifecycle(
    journey_id: JourneyId, action: Annotated[Literal["pause", "resume", "archive"], Path()]
) -> JourneyStatus:
    if action not in ("pause", "resume", "archive"):
        raise BadRequest(f"unknown action {action!r}: pause, resume or archive", reason="bad_action")
    return JourneyStatus.model_validate(getattr(_admin(), action)(_tenant(), journey_id))
