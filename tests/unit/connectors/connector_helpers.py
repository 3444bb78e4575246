"""Connector unit-test helpers: request builders and signers for each source."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huiliu.connectors.base import HttpRequest, TenantContext
from huiliu.tenants import TenantSettings, new_demo_secrets

EVENTS = Path(__file__).resolve().parents[3] / "events"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sample(connector: str, name: str) -> bytes:
    return (EVENTS / connector / name).read_bytes()


def sample_json(connector: str, name: str) -> dict[str, Any]:
    return json.loads(sample(connector, name))


def make_tenant() -> TenantContext:
    return TenantContext(
        tenant_id="acme", settings=TenantSettings(tenant_id="acme", name="Acme"), secrets=new_demo_secrets()
    )


def make_request(
    body: bytes,
    *,
    path: str = "/v1/hooks/x/acme",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> HttpRequest:
    all_headers = {"content-type": content_type, **{k.lower(): v for k, v in (headers or {}).items()}}
    return HttpRequest(method=method, path=path, headers=all_headers, query=query or {}, body=body)


def youzan_request(
    tenant: TenantContext, body: dict[str, Any] | bytes, *, sign: str | None = None
) -> HttpRequest:
    secrets = tenant.secrets.youzan
    assert secrets
    if isinstance(body, dict):
        body = {**body, "client_id": secrets.client_id}
        raw = json.dumps(body, ensure_ascii=False).encode()
    else:
        raw = body
    digest = hashlib.md5(secrets.client_id.encode() + raw + secrets.client_secret.encode()).hexdigest()
    return make_request(raw, path="/v1/hooks/youzan/acme", headers={"Event-Sign": sign or digest})


def shopify_request(
    body: bytes, secret: str, topic: str, *, webhook_id: str = "wh-1", signature: str | None = None
) -> HttpRequest:
    mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return make_request(
        body,
        path="/v1/hooks/shopify/acme",
        headers={
            "X-Shopify-Hmac-Sha256": signature or mac,
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": "acme.myshopify.com",
            "X-Shopify-API-Version": "2025-07",
        },
    )


def signed_json_request(
    body: bytes, secret: str, *, webhook_id: str = "msg_1", at: datetime = NOW
) -> HttpRequest:
    from standardwebhooks.webhooks import Webhook

    signature = Webhook(secret).sign(webhook_id, at, body.decode())
    return make_request(
        body,
        path="/v1/hooks/signed-json/acme",
        headers={
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        },
    )


def wechat_plain_request(tenant: TenantContext, xml: bytes, *, timestamp: int | None = None) -> HttpRequest:
    secrets = tenant.secrets.wechat
    assert secrets
    ts = str(timestamp if timestamp is not None else int(NOW.timestamp()))
    nonce = "n0nce"
    signature = hashlib.sha1("".join(sorted([secrets.token, ts, nonce])).encode()).hexdigest()
    return make_request(
        xml,
        path="/v1/hooks/wechat/acme",
        content_type="text/xml",
        query={"signature": signature, "timestamp": ts, "nonce": nonce, "openid": "o"},
    )


def wechat_aes_request(tenant: TenantContext, xml: bytes, *, app_id: str | None = None) -> HttpRequest:
    """Encrypted with wechatpy's independent implementation of WeChat's safe mode."""
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.utils import to_text

    secrets = tenant.secrets.wechat
    assert secrets
    assert secrets.encoding_aes_key
    ts = str(int(NOW.timestamp()))
    nonce = "n0nce"
    crypto = WeChatCrypto(secrets.token, secrets.encoding_aes_key, app_id or secrets.app_id)
    envelope = crypto.encrypt_message(to_text(xml), nonce, ts)
    from defusedxml.ElementTree import fromstring

    fields = {child.tag: child.text for child in fromstring(envelope)}
    encrypted = fields["Encrypt"]
    body = f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    plain_sig = hashlib.sha1("".join(sorted([secrets.token, ts, nonce])).encode()).hexdigest()
    return make_request(
        body.encode(),
        path="/v1/hooks/wechat/acme",
        content_type="text/xml",
        query={
            "signature": plain_sig,
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": fields["MsgSignature"],
        },
    )
