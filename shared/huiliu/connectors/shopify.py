"""Shopify webhooks → canonical events.

``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body with the app secret (the previous
secret is accepted too, for the hour after a rotation). Dedupe on a digest of the topic and the
signed body — not ``X-Shopify-Webhook-Id``, which the HMAC does not cover. Any 2xx is success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from huiliu.connectors.base import (
    Authenticated,
    Connector,
    ConnectorResult,
    HttpReply,
    HttpRequest,
    TenantContext,
)
from huiliu.connectors.common import (
    as_text,
    digest_id,
    money,
    optional_timestamp,
    parse_json_object,
    require_json_post,
)
from huiliu.errors import BadRequest, NotFound, Unauthorized
from huiliu.models import CanonicalEvent, EventType, Identifier, Source, build_identifiers

NAME = "shopify"
SUCCESS = HttpReply(200, '{"success":true}')
ORDER_EVENTS = {
    "orders/create": "Order Completed",
    "orders/paid": "Order Paid",
    "orders/fulfilled": "Order Fulfilled",
    "orders/cancelled": "Order Cancelled",
    "orders/updated": "Order Updated",
}
CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update"})


def hmac_b64(secret: str, body: bytes) -> bytes:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())


def verify(request: HttpRequest, secrets: list[str]) -> None:
    given = (request.header("x-shopify-hmac-sha256") or "").strip()
    if not given:
        raise Unauthorized("X-Shopify-Hmac-Sha256 is required", reason="missing_signature")
    matched = False
    for secret in secrets:  # check every secret: constant work whichever one matches
        matched |= hmac.compare_digest(given.encode(), hmac_b64(secret, request.body))
    if not matched:
        raise Unauthorized("X-Shopify-Hmac-Sha256 does not match", reason="bad_signature")


def _str(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    return str(value)


def customer_identifiers(
    customer: dict[str, Any], region: str, extra_phone: Any = None, extra_email: Any = None
) -> list[Identifier]:
    return build_identifiers(
        [
            ("shopify_customer_id", _str(customer.get("id"))),
            ("email", _str(customer.get("email")) or _str(extra_email)),
            ("phone", _str(customer.get("phone")) or _str(extra_phone)),
        ],
        region,
    )


def products(lines: Any) -> list[dict[str, Any]]:
    found = []
    for line in lines[:500] if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            continue
        item = {
            "product_id": _str(line.get("product_id")),
            "variant_id": _str(line.get("variant_id")),
            "sku": _str(line.get("sku")),
            "name": _str(line.get("title") or line.get("name")),
            "price": money(line.get("price")),
            "quantity": line.get("quantity") if isinstance(line.get("quantity"), int) else None,
        }
        found.append({k: v for k, v in item.items() if v is not None})
    return found


def marketing_consent(customer: dict[str, Any]) -> dict[str, bool]:
    """Shopify's consent fields in Huiliu's vocabulary (marketing consent per channel):
    ``email_marketing_consent.state`` / ``sms_marketing_consent.state`` (``subscribed`` grants; any
    other state — not_subscribed, unsubscribed, redacted, pending — does not), else the legacy
    ``accepts_marketing`` boolean for email."""
    consent: dict[str, bool] = {}
    for field, channel in (("email_marketing_consent", "email"), ("sms_marketing_consent", "sms")):
        entry = customer.get(field)
        if isinstance(entry, dict) and entry.get("state"):
            consent[channel] = entry.get("state") == "subscribed"
    if "email" not in consent and isinstance(customer.get("accepts_marketing"), bool):
        consent["email"] = customer["accepts_marketing"]
    return consent


class ShopifyConnector(Connector):
    name = NAME

    def authenticate(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> Authenticated:
        secrets = tenant.secrets.shopify
        if secrets is None:
            raise NotFound("unknown tenant or connector")
        verify(request, [s for s in (secrets.secret, secrets.previous_secret) if s])
        return Authenticated()

    def translate(
        self, request: HttpRequest, tenant: TenantContext, now: datetime, auth: Authenticated
    ) -> ConnectorResult:
        require_json_post(request, "Shopify webhooks")
        topic = (request.header("x-shopify-topic") or "").strip().lower()
        if not topic:
            raise BadRequest("X-Shopify-Topic is required", reason="missing_topic")
        body = parse_json_object(request.body)
        webhook_id = as_text(request.header("x-shopify-webhook-id"), field="webhook_id", required=False)
        # The HMAC covers the body only: X-Shopify-Webhook-Id (and the topic) are not signed, so a
        # captured body re-sent under a new id must not be a new event. Dedupe on what is signed.
        # The topic is part of the key (orders/create and orders/paid may carry the same body);
        # replaying a body under another topic gives at most one event per topic, and identity
        # counts an order's revenue once per order_id whatever the topic.
        message_id = "shp-" + digest_id(topic, hashlib.sha256(request.body).hexdigest())
        shop = request.header("x-shopify-shop-domain") or None
        context: dict[str, Any] = {
            "shopify": {
                k: v
                for k, v in {
                    "topic": topic,
                    "shop_domain": shop,
                    "api_version": request.header("x-shopify-api-version"),
                    "triggered_at": request.header("x-shopify-triggered-at"),
                    "event_id": request.header("x-shopify-event-id"),
                    "webhook_id": webhook_id,
                }.items()
                if v
            }
        }
        region = tenant.settings.default_region
        when = (
            _when(body.get("updated_at"))
            or _when(body.get("created_at"))
            or _when(request.header("x-shopify-triggered-at"))
            or now
        )
        common: dict[str, Any] = {
            "tenant_id": tenant.tenant_id,
            "message_id": message_id,
            "timestamp": when,
            "received_at": now,
            "source": Source(connector=NAME, account=shop),
            "context": context,
        }
        if topic in CUSTOMER_TOPICS:
            event = self._customer(body, region, common)
        elif topic in ORDER_EVENTS:
            event = self._order(topic, body, region, common)
        elif topic == "refunds/create":
            event = self._refund(body, common)
        else:  # other subscribed topics are kept as generic track events, not dropped
            event = CanonicalEvent(
                type=EventType.TRACK, event=f"Shopify {topic}"[:200], properties={"payload": body}, **common
            )
        return ConnectorResult(events=[event], reply=SUCCESS, delivery_id=webhook_id or message_id)

    @staticmethod
    def _customer(body: dict[str, Any], region: str, common: dict[str, Any]) -> CanonicalEvent:
        if body.get("id") in (None, ""):
            raise BadRequest("customer id is required", reason="missing_id")
        traits = {
            k: body[k]
            for k in (
                "first_name",
                "last_name",
                "state",
                "verified_email",
                "note",
                "tags",
                "currency",
                "created_at",
                "orders_count",
                "total_spent",
            )
            if body.get(k) not in (None, "")
        }
        email, phone = _str(body.get("email")), _str(body.get("phone"))
        if email:
            traits["email"] = email
        if phone:
            traits["phone"] = phone
        consent = marketing_consent(body)
        if consent:
            traits["consent"] = consent
        return CanonicalEvent(
            type=EventType.IDENTIFY, identifiers=customer_identifiers(body, region), traits=traits, **common
        )

    @staticmethod
    def _order(topic: str, body: dict[str, Any], region: str, common: dict[str, Any]) -> CanonicalEvent:
        if body.get("id") in (None, ""):
            raise BadRequest("order id is required", reason="missing_id")
        customer = _mapping(body.get("customer"))
        props = {
            "order_id": _str(body.get("id")),
            "order_number": _str(body.get("name") or body.get("order_number")),
            "revenue": money(body.get("total_price")),
            "subtotal": money(body.get("subtotal_price")),
            "tax": money(body.get("total_tax")),
            "discount": money(body.get("total_discounts")),
            "currency": _str(body.get("currency")),
            "financial_status": _str(body.get("financial_status")),
            "fulfillment_status": _str(body.get("fulfillment_status")),
            "cancel_reason": _str(body.get("cancel_reason")),
            "products": products(body.get("line_items")),
        }
        return CanonicalEvent(
            type=EventType.TRACK,
            event=ORDER_EVENTS[topic],
            identifiers=customer_identifiers(customer, region, body.get("phone"), body.get("email")),
            properties={k: v for k, v in props.items() if v is not None},
            **common,
        )

    @staticmethod
    def _refund(body: dict[str, Any], common: dict[str, Any]) -> CanonicalEvent:
        if body.get("order_id") in (None, ""):
            raise BadRequest("order_id is required", reason="missing_order_id")
        total = 0.0
        currency = None
        for tx in _list(body.get("transactions")):
            if (
                isinstance(tx, dict)
                and tx.get("kind", "refund") == "refund"
                and tx.get("status", "success") == "success"
            ):
                total += money(tx.get("amount")) or 0.0
                currency = currency or _str(tx.get("currency"))
        lines = [
            {
                **_mapping(r.get("line_item")),
                "quantity": r.get("quantity"),
            }
            for r in _list(body.get("refund_line_items"))
            if isinstance(r, dict)
        ]
        props = {
            "order_id": _str(body.get("order_id")),
            "refund_id": _str(body.get("id")),
            "revenue": round(total, 2),
            "currency": currency,
            "products": products(lines),
        }
        return CanonicalEvent(
            type=EventType.TRACK,
            event="Order Refunded",
            properties={k: v for k, v in props.items() if v is not None},
            **common,
        )


def _when(value: Any) -> datetime | None:
    try:
        return optional_timestamp(value)
    except BadRequest:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
