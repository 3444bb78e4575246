"""Admin HTTP routes for profiles, mounted by the admin app under ``/admin``.

The admin handler authenticates the caller and puts the key's tenant on the context
(``tenant_of(router)``); parameters and bodies are validated from the type hints below and the
OpenAPI document is generated from them (see docs/admin.md).

- ``GET  /profiles/lookup?phone=|email=|user_id=|type=&value=&cursor=&limit=`` -> 360 view
- ``GET  /profiles/{id}?cursor=&limit=``                          -> 360 view (timeline page)
- ``POST /profiles/{id}/unmerge``  body ``{"merge_id": ...}`` or ``{"absorbed_id": ...}``
- ``POST /profiles/erase``         body ``{"type": ..., "value": ...}``
- ``GET  /profiles/{id}/export``                                  -> everything, as JSON

``limit`` is an integer 1..200; ``cursor`` is a ``next_cursor`` from an earlier page (else 400
``bad_cursor``).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS, tenant_of
from huiliu.errors import BadRequest
from huiliu.identity.admin_bodies import (
    EraseResult,
    ExportDocument,
    IdentifierBody,
    ProfileView,
    UnmergeBody,
    UnmergeResult,
)

router = APIGatewayHttpRouter()
LOOKUP_KEYS = ("phone", "email", "user_id", "member_id", "anonymous_id", "wechat_openid", "wechat_unionid")
MAX_LIMIT = 200
TAGS = ["profiles"]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="timeline items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of an earlier page")]
Value = Annotated[str | None, Query(min_length=1, max_length=256)]
ProfileId = Annotated[str, Path(min_length=1, max_length=128)]


def _build_admin() -> Any:
    from huiliu.identity.admin import ProfileAdmin
    from huiliu.identity.wiring import build_repository, tenant_settings_lookup

    return ProfileAdmin(build_repository(), settings_for=tenant_settings_lookup())


def _admin() -> Any:
    """The ProfileAdmin on the admin slot (huiliu.adminapi.wiring: injected, else built on first use)."""
    from huiliu.adminapi.wiring import services

    return services().get("profiles", _build_admin)


def _publish(events: list[Any]) -> None:
    from huiliu.adminapi.wiring import publish

    publish(events)


@router.get("/profiles/lookup", tags=TAGS, responses=ERRORS, summary="Find a person's 360 view")
def lookup_profile(
    phone: Value = None,
    email: Value = None,
    user_id: Value = None,
    member_id: Value = None,
    anonymous_id: Value = None,
    wechat_openid: Value = None,
    wechat_unionid: Value = None,
    type: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    value: Value = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ProfileView:
    """Give exactly one identifier (``phone``, ``email``, ``user_id`` …) or ``type`` and ``value``."""
    tenant, admin = tenant_of(router), _admin()
    given = {
        "phone": phone,
        "email": email,
        "user_id": user_id,
        "member_id": member_id,
        "anonymous_id": anonymous_id,
        "wechat_openid": wechat_openid,
        "wechat_unionid": wechat_unionid,
    }
    if type and value:
        kind, found = type, value
    else:
        present = [(k, v) for k, v in given.items() if v]
        if len(present) != 1:
            raise BadRequest("give exactly one of phone, email, user_id … or type and value")
        kind, found = present[0]
    profile_id = admin.lookup(tenant, admin.identifier(tenant, kind, found))
    return ProfileView.model_validate(admin.view(tenant, profile_id, cursor=cursor or None, limit=limit))


@router.get("/profiles/<profile_id>", tags=TAGS, responses=ERRORS, summary="A profile's 360 view")
def get_profile(profile_id: ProfileId, cursor: Cursor = None, limit: Limit = 50) -> ProfileView:
    view = _admin().view(tenant_of(router), profile_id, cursor=cursor or None, limit=limit)
    return ProfileView.model_validate(view)


@router.post("/profiles/<profile_id>/unmerge", tags=TAGS, responses=ERRORS, summary="Undo a merge")
def unmerge_profile(profile_id: ProfileId, body: UnmergeBody) -> UnmergeResult:
    result = _admin().unmerge(
        tenant_of(router), profile_id, merge_id=body.merge_id, absorbed_id=body.absorbed_id
    )
    _publish(result.events)
    return UnmergeResult.model_validate(result.body)


@router.post("/profiles/erase", tags=TAGS, responses=ERRORS, summary="Erase a person (PIPL/GDPR)")
def erase_profile(body: IdentifierBody) -> EraseResult:
    tenant, admin = tenant_of(router), _admin()
    result = admin.erase(tenant, admin.identifier(tenant, body.type, body.value))
    _publish(result.events)
    return EraseResult.model_validate(result.body)


@router.get("/profiles/<profile_id>/export", tags=TAGS, responses=ERRORS, summary="Export a person")
def export_profile(profile_id: ProfileId) -> ExportDocument:
    return ExportDocument.model_validate(_admin().export(tenant_of(router), profile_id))
