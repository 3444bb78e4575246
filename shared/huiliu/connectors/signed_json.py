"""Signed JSON for POS systems and iPaaS tools: Standard Webhooks signatures, a published schema.

Headers ``webhook-id``, ``webhook-timestamp`` (unix seconds, ±5 min), ``webhook-signature``
(space-separated ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``), secret ``whsec_`` +
base64 key. Body: one :class:`CustomerPayload`, :class:`OrderPayload` or :class:`CustomEventPayload`
(discriminated by ``type``), or ``{"batch": [...]}`` of up to 500 of them. The JSON Schemas in
``huiliu/schemas/`` are generated from these models (``python -m huiliu.connectors.signed_json``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from huiliu.connectors.base import (
    REPLAY_WINDOW_SECONDS,
    Authenticated,
    Connector,
    ConnectorResult,
    HttpReply,
    HttpRequest,
    TenantContext,
)
from huiliu.connectors.common import parse_json_object, require_json_post
from huiliu.errors import BadRequest, NotFound, Unauthorized
from huiliu.models import CanonicalEvent, EventType, Identifier, Source, build_identifiers
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

NAME = "signed-json"
SUCCESS = HttpReply(200, '{"success":true}')
MAX_BATCH = 500
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Text = Annotated[str, Field(min_length=1, max_length=256)]


class Person(BaseModel):
    """Who the event is about: at least one identifier."""

    model_config = ConfigDict(extra="forbid")

    user_id: Text | None = None
    member_id: Text | None = None
    email: Text | None = None
    phone: Text | None = Field(default=None, description="Any common format; normalised to E.164")
    anonymous_id: Text | None = None
    wechat_openid: Text | None = None
    wechat_unionid: Text | None = None
    external_ids: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")], Text] = Field(
        default_factory=dict, description="Extra identifiers by type, e.g. {'pos_card': '8812'}"
    )


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: Text | None = Field(default=None, description="Dedupe key; defaults to webhook-id")
    timestamp: datetime | None = Field(default=None, description="When it happened (ISO-8601)")
    person: Person
    context: dict[str, Any] = Field(default_factory=dict)


class CustomerPayload(_Base):
    """A customer created or updated in the source system."""

    type: Literal["customer"]
    traits: dict[str, Any] = Field(default_factory=dict)


class Product(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_id: Text | None = None
    sku: Text | None = None
    name: Annotated[str, Field(max_length=500)] | None = None
    price: float | None = None
    quantity: int | None = Field(default=None, ge=0)


class OrderPayload(_Base):
    """An order event (Segment e-commerce names)."""

    type: Literal["order"]
    event: Literal["Order Completed", "Order Paid", "Order Refunded", "Order Cancelled", "Order Updated"] = (
        "Order Completed"
    )
    order_id: Text
    revenue: float | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    products: list[Product] = Field(default_factory=list, max_length=500)
    properties: dict[str, Any] = Field(default_factory=dict)


class CustomEventPayload(_Base):
    """Any other named event."""

    type: Literal["event"]
    event: Annotated[str, Field(min_length=1, max_length=200)]
    properties: dict[str, Any] = Field(default_factory=dict)


Payload = Annotated[CustomerPayload | OrderPayload | CustomEventPayload, Field(discriminator="type")]


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: list[Payload] = Field(min_length=1, max_length=MAX_BATCH)


_PAYLOAD: TypeAdapter[Any] = TypeAdapter(Payload)
_BATCH = TypeAdapter(Batch)


def signing_key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return encoded.encode()


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(signing_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify(request: HttpRequest, secret: str, now: datetime) -> str:
    """Check the Standard Webhooks headers; returns the webhook id."""
    webhook_id = request.header("webhook-id") or ""
    timestamp = request.header("webhook-timestamp") or ""
    signatures = request.header("webhook-signature") or ""
    if not webhook_id or not timestamp or not signatures:
        raise Unauthorized(
            "webhook-id, webhook-timestamp and webhook-signature are required", reason="missing_signature"
        )
    if len(webhook_id) > 200:
        raise BadRequest("webhook-id is too long", reason="invalid_webhook_id")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Unauthorized("webhook-timestamp is not unix seconds", reason="bad_timestamp")
    if abs(now.timestamp() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise Unauthorized("webhook-timestamp outside the 5-minute window", reason="stale_timestamp")
    expected = sign(secret, webhook_id, timestamp, request.body).encode()
    matched = False
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1":
            matched |= hmac.compare_digest(value.encode(), expected)
    if not matched:
        raise Unauthorized("webhook-signature does not match", reason="bad_signature")
    return webhook_id


def identifiers_of(person: Person, region: str) -> list[Identifier]:
    pairs: list[tuple[str, object]] = [
        (kind, getattr(person, kind))
        for kind in (
            "user_id",
            "member_id",
            "email",
            "phone",
            "anonymous_id",
            "wechat_openid",
            "wechat_unionid",
        )
    ]
    pairs.extend(person.external_ids.items())
    return build_identifiers(pairs, region)


def translate(
    payload: CustomerPayload | OrderPayload | CustomEventPayload,
    message_id: str,
    tenant: TenantContext,
    now: datetime,
    position: str = "",
) -> CanonicalEvent:
    identifiers = identifiers_of(payload.person, tenant.settings.default_region)
    if not identifiers:
        raise BadRequest(f"person{position} has no usable identifier", reason="missing_identifier")
    common: dict[str, Any] = {
        "tenant_id": tenant.tenant_id,
        "message_id": payload.message_id or message_id,
        "timestamp": payload.timestamp or now,
        "received_at": now,
        "source": Source(connector=NAME),
        "identifiers": identifiers,
        "context": payload.context,
    }
    if isinstance(payload, CustomerPayload):
        return CanonicalEvent(type=EventType.IDENTIFY, traits=payload.traits, **common)
    if isinstance(payload, OrderPayload):
        props = {
            **payload.properties,
            "order_id": payload.order_id,
            "revenue": payload.revenue,
            "currency": payload.currency,
            "products": [p.model_dump(exclude_none=True) for p in payload.products],
        }
        props = {k: v for k, v in props.items() if v is not None}
        return CanonicalEvent(type=EventType.TRACK, event=payload.event, properties=props, **common)
    return CanonicalEvent(type=EventType.TRACK, event=payload.event, properties=payload.properties, **common)


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[:1]
    where = ".".join(str(p) for p in first[0]["loc"]) if first else ""
    return f"{first[0]['msg'] if first else 'invalid'} at {where or 'body'}"


class SignedJsonConnector(Connector):
    name = NAME

    def authenticate(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> Authenticated:
        secrets = tenant.secrets.signed_json
        if secrets is None:
            raise NotFound("unknown tenant or connector")
        return Authenticated(state=verify(request, secrets.secret, now))

    def translate(
        self, request: HttpRequest, tenant: TenantContext, now: datetime, auth: Authenticated
    ) -> ConnectorResult:
        require_json_post(request, "signed JSON webhooks")
        webhook_id = str(auth.state)
        body = parse_json_object(request.body)
        try:
            if "batch" in body:
                payloads = list(_BATCH.validate_python(body).batch)
            else:
                payloads = [_PAYLOAD.validate_python(body)]
        except ValidationError as exc:
            raise BadRequest(_validation_reason(exc), reason="schema_violation") from exc
        single = len(payloads) == 1 and "batch" not in body
        events = [
            translate(
                p, webhook_id if single else f"{webhook_id}:{i}", tenant, now, "" if single else f"[{i}]"
            )
            for i, p in enumerate(payloads)
        ]
        return ConnectorResult(events=events, reply=SUCCESS, delivery_id=webhook_id)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schemas, by file name."""
    envelope = TypeAdapter(Payload | Batch).json_schema()
    envelope["title"] = "Huiliu signed-JSON webhook body"
    return {
        "signed-json.schema.json": envelope,
        "signed-json-customer.schema.json": CustomerPayload.model_json_schema(),
        "signed-json-order.schema.json": OrderPayload.model_json_schema(),
        "signed-json-event.schema.json": CustomEventPayload.model_json_schema(),
    }


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas():
        print(written_path)
