"""Admin HTTP routes for message templates and direct send requests, mounted under ``/admin``.

| route | |
|---|---|
| `POST /templates` body: one template | validate (render each locale against `sample`), save |
| `POST /templates/validate` body: one template | `{"valid": true}` or 400 with problems (saves nothing) |
| `GET /templates` | every template with its version |
| `GET /templates/{id}` | `{"template": {...}}` |
| `DELETE /templates/{id}` | delete |
| `POST /templates/{id}/preview` body: `{"locale", "traits", "vars", "event"}` | the rendered message |
| `POST /notifications` body: a send request | publishes `notification.requested` (source huiliu.admin) |

A template that references a variable its sample lacks is refused here, when it is saved — not
discovered at send time. ``huiliu templates apply -f`` and ``huiliu apply -f DIR`` use these routes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from huiliu.errors import BadRequest, NotFound, Unauthorized

router = APIGatewayHttpRouter()
_deps: dict[str, Any] = {}


def configure(repo: Any | None = None, publisher: Any | None = None) -> None:
    """Inject a TemplateRepository and a publisher (tests); real ones are built lazily."""
    _deps.clear()
    if repo is not None:
        _deps["repo"] = repo
    if publisher is not None:
        _deps["publisher"] = publisher


def _repo() -> Any:
    if "repo" not in _deps:
        from huiliu.notify.template_store import TemplateRepository
        from huiliu.settings import get_settings

        _deps["repo"] = TemplateRepository(get_settings().tenants_table)
    return _deps["repo"]


def _publisher() -> Any:
    if "publisher" not in _deps:
        from huiliu.bus import bus_publisher

        _deps["publisher"] = bus_publisher()
    return _deps["publisher"]


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


def _body() -> dict[str, Any]:
    try:
        body = router.current_event.json_body
    except ValueError as exc:
        raise BadRequest("the body is not JSON", reason="bad_body") from exc
    if isinstance(body, dict) and isinstance(body.get("definition"), dict):
        body = body["definition"]
    if not isinstance(body, dict):
        raise BadRequest("the body is one template (a JSON object)", reason="bad_body")
    return body


def _refused(problems: list[dict[str, str]], message: str) -> Response:
    return Response(
        status_code=400,
        content_type=content_types.APPLICATION_JSON,
        body={"success": False, "code": "invalid_template", "message": message, "problems": problems},
    )


def _parse(body: dict[str, Any]) -> tuple[Any, Response | None]:
    """(template, None) when it is valid and renders against its sample, else (None, a 400)."""
    from huiliu.notify.templates import Template, validate

    try:
        template = Template.model_validate(body)
    except ValidationError as exc:
        problems = [
            {"path": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]} for err in exc.errors()
        ]
        return None, _refused(problems, "the template is not valid")
    errors = validate(template)
    if errors:
        problems = [
            {"path": f"locales.{e.split(':', 1)[0]}", "reason": e.split(":", 1)[1].strip()} for e in errors
        ]
        return None, _refused(problems, "the template does not render against its sample")
    return template, None


@router.post("/templates/validate")
def validate_template() -> Any:
    _template, refused = _parse(_body())
    return refused or {"valid": True}


@router.post("/templates")
def save_template() -> Any:
    template, refused = _parse(_body())
    if refused:
        return refused
    saved = _repo().save_template(_tenant(), template)
    return {"template": saved.model_dump(mode="json"), "version": saved.version}


@router.get("/templates")
def list_templates() -> Any:
    items = _repo().list_templates(_tenant())
    return {
        "templates": [
            {
                "id": t.template_id,
                "channel": t.channel,
                "purpose": t.purpose,
                "version": t.version,
                "locales": sorted(t.locales),
            }
            for t in items
        ]
    }


@router.get("/templates/<template_id>")
def get_template(template_id: str) -> Any:
    found = _repo().get_template(_tenant(), template_id)
    if found is None:
        raise NotFound(f"no template {template_id}")
    return {"template": found.model_dump(mode="json")}


@router.delete("/templates/<template_id>")
def delete_template(template_id: str) -> Any:
    _repo().delete_template(_tenant(), template_id)
    return {"deleted": template_id}


@router.post("/templates/<template_id>/preview")
def preview_template(template_id: str) -> Any:
    from jinja2 import TemplateError

    from huiliu.notify.templates import render, sample_context

    found = _repo().get_template(_tenant(), template_id)
    if found is None:
        raise NotFound(f"no template {template_id}")
    body = router.current_event.json_body or {}
    context = sample_context({**found.sample, **{k: v for k, v in body.items() if k != "locale"}})
    locale = found.pick_locale(body.get("locale"))
    try:
        return {"rendered": render(found, context, locale).model_dump(mode="json")}
    except TemplateError as exc:
        raise BadRequest(f"does not render: {exc}", reason="render_error") from exc


@router.post("/notifications")
def request_notification() -> Any:
    """A send request from outside a journey (transactional mail such as a receipt or an OTP)."""
    from datetime import UTC, datetime

    from huiliu.contracts import NotificationRequested, derive_event_id

    tenant = _tenant()
    try:
        body = router.current_event.json_body
    except ValueError as exc:
        raise BadRequest("the body is not JSON", reason="bad_body") from exc
    if not isinstance(body, dict) or not body.get("idempotency_key"):
        raise BadRequest("give idempotency_key, profile_id, channel, template_id", reason="bad_body")
    payload = {
        "purpose": "transactional",
        **body,
        "tenant_id": tenant,
        "event_id": derive_event_id(tenant, "admin", body["idempotency_key"]),
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    try:
        request = NotificationRequested.model_validate(payload)
    except ValidationError as exc:
        raise BadRequest(str(exc.errors()[0]["msg"]), reason="bad_body") from exc
    _publisher().publish([request.outgoing("huiliu.admin")])
    return {"requested": request.idempotency_key, "event_id": request.event_id}
