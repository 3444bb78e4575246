"""Outbound webhooks signed per the Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with a ``whsec_`` secret).

The ``webhook-id`` is derived from the idempotency key, so a resend carries the same id and the
receiver dedupes it (the spec asks receivers to): this sender is idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime

from huiliu.notify.channels.base import OutboundMessage, SendResult, classify_http, http_json


def webhook_id(tenant_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}\x1f{idempotency_key}".encode()).hexdigest()[:26]
    return f"msg_{digest}"


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookSender:
    provider = "webhook"

    def __init__(
        self, secret_for: Callable[[str], str], now: Callable[[], datetime], *, timeout: float = 5.0
    ) -> None:
        self.secret_for = secret_for
        self.now = now
        self.timeout = timeout

    def idempotent(self, message: OutboundMessage) -> bool:
        return True

    def payload(self, message: OutboundMessage) -> str:
        body = {
            "type": message.extra.get("event_type", "huiliu.notification"),
            "timestamp": self.now().isoformat(),
            "data": {
                "idempotency_key": message.idempotency_key,
                "profile_id": message.profile_id,
                **message.fields,
            },
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    def send(self, message: OutboundMessage) -> SendResult:
        body = self.payload(message)
        msg_id = webhook_id(message.tenant_id, message.idempotency_key)
        stamp = int(self.now().timestamp())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(self.secret_for(message.tenant_id), msg_id, stamp, body),
            "User-Agent": "huiliu-webhooks/1",
        }
        status, reply = http_json(
            "POST", message.to, raw=body.encode(), headers=headers, timeout=self.timeout
        )
        classify_http(status, "webhook", reply)
        return SendResult(self.provider, msg_id)
