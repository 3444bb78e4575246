"""Simulated sources: build signed webhook requests exactly as each platform would send them.

Used by the demo (and handy for poking a running local runtime). Each function takes the tenant's
connector settings as ``huiliu local tenant --json`` prints them and a sample body from
``events/``, and returns a ready request. Signing is done independently of Huiliu's verifying code
(WeChat safe mode through wechatpy, Standard Webhooks through the ``standardwebhooks`` package).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class SignedRequest:
    method: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    label: str = ""


def segment(conf: dict[str, Any], call: str, payload: dict[str, Any], label: str = "") -> SignedRequest:
    auth = base64.b64encode(f"{conf['write_key']}:".encode()).decode()
    return SignedRequest(
        "POST",
        f"{conf['url']}/{call}",
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        label or f"segment {call}",
    )


def youzan(conf: dict[str, Any], payload: dict[str, Any], label: str = "") -> SignedRequest:
    body = dict(payload, client_id=conf["client_id"])
    raw = json.dumps(body, ensure_ascii=False).encode()
    digest = hashlib.md5(conf["client_id"].encode() + raw + conf["client_secret"].encode()).hexdigest()  # noqa: S324 - Youzan's scheme
    headers = {
        "Content-Type": "application/json",
        "Event-Sign": digest,
        "Event-Type": str(body.get("type", "")),
        "Client-Id": conf["client_id"],
    }
    return SignedRequest("POST", conf["url"], raw, headers, label or f"youzan {body.get('type')}")


def wechat(conf: dict[str, Any], xml: str, *, safe_mode: bool = True, label: str = "") -> SignedRequest:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
    signature = hashlib.sha1("".join(sorted([conf["token"], timestamp, nonce])).encode()).hexdigest()  # noqa: S324 - WeChat's scheme
    query: dict[str, str] = {"signature": signature, "timestamp": timestamp, "nonce": nonce}
    openid = xml.split("<FromUserName><![CDATA[", 1)[-1].split("]]>", 1)[0]
    query["openid"] = openid
    body = xml.encode()
    if safe_mode:
        from wechatpy.crypto import WeChatCrypto

        crypto = WeChatCrypto(conf["token"], conf["encoding_aes_key"], conf["app_id"])
        encrypted = crypto.encrypt_message(xml, nonce, timestamp)
        msg_signature = encrypted.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
        query.update(encrypt_type="aes", msg_signature=msg_signature)
        body = encrypted.encode()
    return SignedRequest(
        "POST", f"{conf['url']}?{urlencode(query)}", body, {"Content-Type": "text/xml"}, label or "wechat"
    )


def shopify(conf: dict[str, Any], topic: str, payload: dict[str, Any], label: str = "") -> SignedRequest:
    raw = json.dumps(payload).encode()
    digest = base64.b64encode(hmac.new(conf["secret"].encode(), raw, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Shop-Domain": "huiliu-demo.myshopify.com",
        "X-Shopify-API-Version": "2025-07",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return SignedRequest("POST", conf["url"], raw, headers, label or f"shopify {topic}")


def signed_json(conf: dict[str, Any], payload: dict[str, Any], label: str = "") -> SignedRequest:
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    raw = json.dumps(payload)
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(conf["secret"]).sign(msg_id, now, raw)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return SignedRequest("POST", conf["url"], raw.encode(), headers, label or "signed-json")


def send(request: SignedRequest) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    if not request.url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {request.url}")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        request.url, data=request.body, method=request.method, headers=request.headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local runtime URL
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
