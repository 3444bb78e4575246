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

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from huiliu.adminapi.core import ERRORS
from huiliu.errors import BadRequest, NotFound, Refused, Unauthorized

router = APIGatewayHttpRouter()
TAGS = ["templates"]
RESPONSES: Any = ERRORS  # documents 200 (the return type) and the shared error shape
TemplateId = Annotated[str, Path(min_length=1, max_length=128, description="the template's id")]
TEMPLATE_EXAMPLE = {
    "template_id": "welcome",
    "channel": "email",
    "purpose": "marketing",
    "sample": {"profile": {"traits": {"name": "李雷"}}, "vars": {"coupon": "W10"}},
    "locales": {"zh-CN": {"subject": "{{ profile.traits.name }}，欢迎", "text": "优惠码 {{ vars.coupon }}"}},
}
TemplateDocument = Annotated[
    dict[str, Any],
    Body(
        description="One template (huiliu.notify.templates.Template: template_id, channel, purpose, "
        "sample, locales{locale: subject/text/html/fields}, wechat/sms settings), or "
        '{"definition": template}. Checked here: 400 with problems[{path, reason}] when invalid or '
        "when a locale does not render against the sample.",
        examples=[TEMPLATE_EXAMPLE],
    ),
]


class TemplateSummary(BaseModel):
    id: str
    channel: str
    purpose: str
    version: int
    locales: list[str]


class TemplateList(BaseModel):
    templates: list[TemplateSummary]


class TemplateOut(BaseModel):
    template: dict[str, Any] = Field(description="the stored template (with its version)")


class TemplateSaved(TemplateOut):
    version: int


class TemplateDeleted(BaseModel):
    deleted: str


class TemplateValid(BaseModel):
    valid: bool


class Rendered(BaseModel):
    rendered: dict[str, Any] = Field(description="subject / text / html / url / fields, as sent")


class PreviewBody(BaseModel):
    """Values merged over the template's sample (any key of the render context)."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"examples": [{"locale": "zh-CN", "vars": {"coupon": "W10"}}]}
    )
    locale: str | None = Field(default=None, max_length=35)
    traits: dict[str, Any] | None = None
    vars: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


class NotificationBody(BaseModel):
    """A send request from outside a journey (a receipt, an OTP …); the fields of
    ``notification.requested`` (huiliu.contracts.NotificationRequested)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "idempotency_key": "receipt-A-1002",
                    "profile_id": "p123",
                    "channel": "email",
                    "template_id": "order-receipt",
                    "variables": {"order_id": "A-1002"},
                }
            ]
        },
    )
    idempotency_key: str = Field(min_length=1, max_length=200, description="one send per key, ever")
    profile_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(description="email | sms | wechat | webhook")
    template_id: str = Field(min_length=1, max_length=128)
    purpose: str = Field(default="transactional", description="transactional | marketing")


class NotificationAccepted(BaseModel):
    requested: str = Field(description="the idempotency key")
    event_id: str


def _build_repo() -> Any:
    from huiliu.notify.template_store import TemplateRepository
    from huiliu.settings import get_settings

    return TemplateRepository(get_settings().tenants_table)


def _repo() -> Any:
    """The TemplateRepository on the admin slot (huiliu.adminapi.wiring: injected, else built)."""
    from huiliu.adminapi.wiring import services

    return services().get("templates", _build_repo)


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


def _unwrap(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("definition"), dict):
        body = body["definition"]
    if not isinstance(body, dict):
        raise BadRequest("the body is one template (a JSON object)", reason="bad_body")
    return body


def _parse(body: dict[str, Any]) -> Any:
    """The template, when it is valid and renders against its sample; else Refused (a 400 with problems)."""
    from huiliu.notify.templates import Template, validate

    try:
        template = Template.model_validate(body)
    except ValidationError as exc:
        problems = [
            {"path": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]} for err in exc.errors()
        ]
        raise Refused("the template is not valid", problems, reason="invalid_template") from None
    errors = validate(template)
    if errors:
        problems = [
            {"path": f"locales.{e.split(':', 1)[0]}", "reason": e.split(":", 1)[1].strip()} for e in errors
        ]
        raise Refused("the template does not render against its sample", problems, reason="invalid_template")
    return template


@router.post(
    "/templates/validate", tags=TAGS, responses=RESPONSES, summary="Check a template (saves nothing)"
)
def validate_template(body: TemplateDocument) -> TemplateValid:
    _parse(_unwrap(body))
    return TemplateValid(valid=True)


@router.post("/templates", tags=TAGS, responses=RESPONSES, summary="Save a template (a new version)")
def save_template(body: TemplateDocument) -> TemplateSaved:
    template = _parse(_unwrap(body))
    saved = _repo().save_template(_tenant(), template)
    return TemplateSaved(template=saved.model_dump(mode="json"), version=saved.version)


@router.get("/templates", tags=TAGS, responses=RESPONSES, summary="Every template with its version")
def list_templates() -> TemplateList:
    items = _repo().list_templates(_tenant())
    return TemplateList(
        templates=[
            TemplateSummary(
                id=t.template_id,
                channel=t.channel,
                purpose=t.purpose,
                version=t.version,
                locales=sorted(t.locales),
            )
            for t in items
        ]
    )


@router.get("/templates/<template_id>", tags=TAGS, responses=RESPONSES, summary="One template")
def get_template(template_id: TemplateId) -> TemplateOut:
    found = _repo().get_template(_tenant(), template_id)
    if found is None:
        raise NotFound(f"no template {template_id}")
    return TemplateOut(template=found.model_dump(mode="json"))


@router.delete("/templates/<template_id>", tags=TAGS, responses=RESPONSES, summary="Delete a template")
def delete_template(template_id: TemplateId) -> TemplateDeleted:
    _repo().delete_template(_tenant(), template_id)
    return TemplateDeleted(deleted=template_id)


@router.post(
    "/templates/<template_id>/preview",
    tags=TAGS,
    responses=RESPONSES,
    summary="Render a template (sends nothing)",
)
def preview_template(template_id: TemplateId, preview: PreviewBody | None = None) -> Rendered:
    from jinja2 import TemplateError

    from huiliu.notify.templates import render, sample_context

    found = _repo().get_template(_tenant(), template_id)
    if found is None:
        raise NotFound(f"no template {template_id}")
    body = preview.model_dump(exclude_none=True) if preview is not None else {}
    context = sample_context({**found.sample, **{k: v for k, v in body.items() if k != "locale"}})
    locale = found.pick_locale(body.get("locale"))
    try:
        return Rendered(rendered=render(found, context, locale).model_dump(mode="json"))
    except TemplateError as exc:
        raise BadRequest(f"does not render: {exc}", reason="render_error") from exc


@router.post(
    "/notifications",
    tags=["notifications"],
    responses=RESPONSES,
    summary="Request a send (notification.requested)",
)
def request_notification(request_body: NotificationBody) -> NotificationAccepted:
    """A send request from outside a journey (transactional mail such as a receipt or an OTP)."""
    from datetime import UTC, datetime

    from huiliu.contracts import NotificationRequested, derive_event_id

    tenant = _tenant()
    body = request_body.model_dump()
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
    from huiliu.adminapi.wiring import publish

    publish([request.outgoing("huiliu.admin")])
    return NotificationAccepted(requested=request.idempotency_key, event_id=request.event_id)
