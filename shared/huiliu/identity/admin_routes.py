"""Admin HTTP routes for profiles, mounted by the admin app under ``/admin``.

The admin app authenticates the caller and puts the tenant on ``router.context["tenant_id"]``.

- ``GET  /profiles/lookup?phone=|email=|user_id=|type=&value=&cursor=&limit=`` -> 360 view
- ``GET  /profiles/{id}?cursor=&limit=``                          -> 360 view (timeline page)

``limit`` is an integer 1..200 (else 400 ``bad_limit``); ``cursor`` is a ``next_cursor`` from an
earlier page (else 400 ``bad_cursor``).
- ``POST /profiles/{id}/unmerge``  body ``{"merge_id": ...}`` or ``{"absorbed_id": ...}``
- ``POST /profiles/erase``         body ``{"type": ..., "value": ...}``
- ``GET  /profiles/{id}/export``                                  -> everything, as JSON
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.errors import BadRequest, Unauthorized

router = APIGatewayHttpRouter()
_deps: dict[str, Any] = {}
LOOKUP_KEYS = ("phone", "email", "user_id", "member_id", "anonymous_id", "wechat_openid", "wechat_unionid")


def configure(admin: Any | None = None, publisher: Any | None = None) -> None:
    """Inject a ProfileAdmin and a publisher (tests, local runtime); real ones are built lazily."""
    _deps.clear()
    if admin is not None:
        _deps["admin"] = admin
    if publisher is not None:
        _deps["publisher"] = publisher


def _admin() -> Any:
    if "admin" not in _deps:
        from huiliu.identity.admin import ProfileAdmin
        from huiliu.identity.wiring import build_repository, tenant_settings_lookup

        _deps["admin"] = ProfileAdmin(build_repository(), settings_for=tenant_settings_lookup())
    return _deps["admin"]


def _publish(events: list[Any]) -> None:
    if not events:
        return
    if "publisher" not in _deps:
        from huiliu.bus import EventBridgePublisher
        from huiliu.settings import get_settings

        _deps["publisher"] = EventBridgePublisher(get_settings().event_bus_name)
    _deps["publisher"].publish(events)


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


MAX_LIMIT = 200
MAX_BODY_DEPTH = 4


def _body(name: str) -> Any:
    """Validate the JSON body with one of ``admin_bodies``' models (pydantic: first use, not import)."""
    from pydantic import ValidationError

    from huiliu.identity import admin_bodies

    model = getattr(admin_bodies, name)
    try:
        raw = router.current_event.json_body or {}
    except RecursionError as exc:  # thousands of levels: json itself gives up
        raise BadRequest("invalid body: nested too deep", reason="bad_body") from exc
    from huiliu.connectors.limits import check_value

    check_value(raw, "body", max_depth=MAX_BODY_DEPTH)  # admin bodies are flat: 400 too_deep
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # a short field/reason list, not pydantic's full text (with its documentation URLs)
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error.get("loc", ())) or "body"
            problems.append(f"{where}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}")
        raise BadRequest("invalid body: " + "; ".join(problems), reason="bad_body") from exc
    except ValueError as exc:
        raise BadRequest("invalid body: not a JSON object", reason="bad_body") from exc


def _query() -> dict[str, str]:
    return dict(router.current_event.query_string_parameters or {})


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return 50
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}", reason="bad_limit")
    return int(text)


@router.get("/profiles/lookup")
def lookup_profile() -> dict[str, Any]:
    tenant, params, admin = _tenant(), _query(), _admin()
    if params.get("type") and params.get("value"):
        kind, value = params["type"], params["value"]
    else:
        found = [(k, params[k]) for k in LOOKUP_KEYS if params.get(k)]
        if len(found) != 1:
            raise BadRequest("give exactly one of phone, email, user_id … or type and value")
        kind, value = found[0]
    limit = _limit(params)
    profile_id = admin.lookup(tenant, admin.identifier(tenant, kind, value))
    return admin.view(tenant, profile_id, cursor=params.get("cursor") or None, limit=limit)


@router.get("/profiles/<profile_id>")
def get_profile(profile_id: str) -> dict[str, Any]:
    params = _query()
    limit = _limit(params)
    return _admin().view(_tenant(), profile_id, cursor=params.get("cursor") or None, limit=limit)


@router.post("/profiles/<profile_id>/unmerge")
def unmerge_profile(profile_id: str) -> dict[str, Any]:
    body = _body("UnmergeBody")
    result = _admin().unmerge(_tenant(), profile_id, merge_id=body.merge_id, absorbed_id=body.absorbed_id)
    _publish(result.events)
    return result.body


@router.post("/profiles/erase")
def erase_profile() -> dict[str, Any]:
    tenant, body, admin = _tenant(), _body("IdentifierBody"), _admin()
    result = admin.erase(tenant, admin.identifier(tenant, body.type, body.value))
    _publish(result.events)
    return result.body


@router.get("/profiles/<profile_id>/export")
def export_profile(profile_id: str) -> dict[str, Any]:
    return _admin().export(_tenant(), profile_id)
