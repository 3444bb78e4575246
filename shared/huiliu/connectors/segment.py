"""Segment HTTP Tracking API (``/v1/identify|track|page|screen|alias|group|batch``).

Authentication (the write key → tenant) is done by the ingest pipeline before this connector is
called; here the body is validated and translated. Every Segment/RudderStack client can point at
Huiliu unchanged: replies are Segment's ``{"success": true}``.
"""

from __future__ import annotations

import json
import re
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
    as_dict,
    as_text,
    digest_id,
    optional_timestamp,
    parse_json_object,
)
from huiliu.errors import BadRequest, PayloadTooLarge
from huiliu.models import CanonicalEvent, EventType, Source, build_identifiers

NAME = "segment"
CALL_TYPES = ("identify", "track", "page", "screen", "alias", "group")
ROUTES = (*CALL_TYPES, "batch")
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID = 100
SUCCESS = HttpReply(200, '{"success":true}')
_TYPE_CLEAN = re.compile(r"[^a-z0-9_]+")
# context.externalIds types that map onto Huiliu's own identifier types.
_EXTERNAL_ALIASES = {
    "email": "email",
    "phone": "phone",
    "user_id": "user_id",
    "userid": "user_id",
    "member_id": "member_id",
    "anonymous_id": "anonymous_id",
    "wechat_openid": "wechat_openid",
    "wechat_unionid": "wechat_unionid",
    "youzan_open_id": "youzan_open_id",
    "shopify_customer_id": "shopify_customer_id",
}


def message_bytes(message: Any) -> int:
    """A message's size as UTF-8 JSON (what Segment's 32 KB per-call limit counts)."""
    return len(json.dumps(message, separators=(",", ":"), default=str, ensure_ascii=False).encode())


def call_type_from_path(path: str) -> str | None:
    """The call type of ``/v1/{type}``; None on the hooks route (the body says: ``type`` or ``batch``)."""
    if path.startswith("/v1/hooks/"):
        return None
    kind = path.rstrip("/").rsplit("/", 1)[-1]
    if kind not in ROUTES:
        raise BadRequest("unknown Segment call type", reason="unknown_call_type")
    return kind


def external_type(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    cleaned = _TYPE_CLEAN.sub("_", raw.strip().lower()).strip("_")[:40]
    if not cleaned or not cleaned[0].isalpha():
        return None
    return _EXTERNAL_ALIASES.get(cleaned, cleaned)


def corrected_timestamp(message: dict[str, Any], batch_sent_at: Any, received_at: datetime) -> datetime:
    """Segment's clock-skew fix: ``timestamp = receivedAt − (sentAt − originalTimestamp)``.

    The client's own time is ``originalTimestamp`` (or ``timestamp`` as server libraries send it);
    without ``sentAt`` it is used as is, and without any client time the receive time is used.
    """
    client_time = optional_timestamp(message.get("originalTimestamp"), field="originalTimestamp")
    if client_time is None:
        client_time = optional_timestamp(message.get("timestamp"), field="timestamp")
    sent_at = optional_timestamp(message.get("sentAt", batch_sent_at), field="sentAt")
    if client_time is None:
        return received_at
    if sent_at is None:
        return client_time
    try:
        return received_at - (sent_at - client_time)
    except OverflowError:  # absurd client clocks (year 1 vs year 9999): trust the receive time
        return received_at


def translate(
    message: Any,
    kind: str | None,
    tenant: TenantContext,
    received_at: datetime,
    *,
    batch_sent_at: Any = None,
    position: str = "",
) -> CanonicalEvent:
    """One Segment message → one canonical event (BadRequest with a reason when invalid)."""
    if not isinstance(message, dict):
        raise BadRequest(f"message{position} must be an object", reason="invalid_message")
    call = kind or message.get("type")
    if call not in CALL_TYPES:
        raise BadRequest(f"message{position} has no valid type", reason="invalid_type")
    user_id = as_text(message.get("userId"), field="userId", required=False)
    anonymous_id = as_text(message.get("anonymousId"), field="anonymousId", required=False)
    if user_id is None and anonymous_id is None:
        raise BadRequest(f"message{position} needs userId or anonymousId", reason="missing_user_id")
    traits = as_dict(message.get("traits"), field="traits")
    properties = as_dict(message.get("properties"), field="properties")
    context = as_dict(message.get("context"), field="context")
    event_name: str | None = None
    if call == "track":
        given = message.get("event")
        if given not in (None, "") and not isinstance(given, str):  # a number is not an event name
            raise BadRequest(f"message{position} event must be a string", reason="invalid_event")
        event_name = as_text(message.get("event"), field="event")
    elif call in ("page", "screen"):
        event_name = as_text(message.get("name"), field="name", required=False)
        # Segment spec: page has name and category (also kept in properties.name/category).
        category = as_text(message.get("category"), field="category", required=False)
        extra = {"name": event_name, "category": category}
        properties = {**{k: v for k, v in extra.items() if v is not None}, **properties}
    elif call == "alias":
        previous = as_text(message.get("previousId"), field="previousId")
        properties = {**properties, "previous_id": previous}
    elif call == "group":
        group_id = as_text(message.get("groupId"), field="groupId")
        properties = {**properties, "group_id": group_id}
    message_id = as_text(
        message.get("messageId"), field="messageId", max_length=MAX_MESSAGE_ID, required=False
    )
    if message_id is None:
        message_id = "seg-" + digest_id(json.dumps(message, sort_keys=True, default=str))
    context_traits = as_dict(context.get("traits"), field="context.traits")
    all_traits = {**context_traits, **traits}
    pairs: list[tuple[str, object]] = [("user_id", user_id), ("anonymous_id", anonymous_id)]
    for trait_kind in ("email", "phone"):
        pairs.append((trait_kind, all_traits.get(trait_kind)))
    if call == "alias":
        pairs.append(("user_id" if user_id is None else "anonymous_id", properties.get("previous_id")))
    external = context.get("externalIds")
    if isinstance(external, list):
        for item in external[:50]:
            if isinstance(item, dict):
                ext_kind = external_type(item.get("type"))
                if ext_kind:
                    pairs.append((ext_kind, item.get("id")))
    return CanonicalEvent(
        tenant_id=tenant.tenant_id,
        message_id=message_id,
        type=EventType(call),
        event=event_name,
        timestamp=corrected_timestamp(message, batch_sent_at, received_at),
        received_at=received_at,
        source=Source(connector=NAME),
        identifiers=build_identifiers(pairs, tenant.settings.default_region),
        traits=traits if call != "identify" else all_traits,
        properties=properties,
        context=context,
    )


class SegmentConnector(Connector):
    name = NAME

    def authenticate(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> Authenticated:
        """The write key is checked by the pipeline (it names the tenant on ``/v1/{call}``)."""
        return Authenticated()

    def translate(
        self, request: HttpRequest, tenant: TenantContext, now: datetime, auth: Authenticated
    ) -> ConnectorResult:
        if request.method != "POST":
            raise BadRequest("Segment calls are POST", reason="method_not_allowed", status=405)
        # No Content-Type check: Segment's API decides by the body, and official clients label
        # their JSON application/json, text/plain or (gzip, through curl) form-urlencoded.
        kind = call_type_from_path(request.path)
        limit = MAX_CALL_BYTES if kind not in ("batch", None) else MAX_BATCH_BYTES
        if len(request.body) > limit:
            raise PayloadTooLarge(f"Segment {kind or 'hook'} calls are limited to {limit} bytes")
        body = parse_json_object(request.body)
        if kind is None:
            kind = "batch" if "batch" in body else None
            if kind is None and len(request.body) > MAX_CALL_BYTES:
                raise PayloadTooLarge(f"Segment calls are limited to {MAX_CALL_BYTES} bytes")
        if kind != "batch":
            event = translate(body, kind, tenant, now)
            return ConnectorResult(events=[event], reply=SUCCESS, delivery_id=event.message_id)
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise BadRequest("batch must be a list", reason="missing_batch")
        if len(batch) > MAX_BATCH_EVENTS:
            raise PayloadTooLarge(
                f"a batch holds at most {MAX_BATCH_EVENTS} events", reason="batch_too_large"
            )
        sent_at = body.get("sentAt")
        shared_context = body.get("context") if isinstance(body.get("context"), dict) else None
        # Only then can one message exceed 32 KB: the body holds it, plus the shared context merged in.
        check_each = len(request.body) > MAX_CALL_BYTES or shared_context is not None
        events: list[CanonicalEvent] = []
        for index, message in enumerate(batch):
            if shared_context and isinstance(message, dict) and "context" not in message:
                message = {**message, "context": shared_context}
            if check_each and message_bytes(message) > MAX_CALL_BYTES:
                raise PayloadTooLarge(
                    f"batch[{index}] is larger than {MAX_CALL_BYTES} bytes (UTF-8, with the batch context)",
                    reason="event_too_large",
                )
            events.append(translate(message, None, tenant, now, batch_sent_at=sent_at, position=f"[{index}]"))
        delivery = digest_id(*(e.message_id for e in events)) if events else None
        return ConnectorResult(events=events, reply=SUCCESS, delivery_id=delivery)
