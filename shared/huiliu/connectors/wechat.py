"""WeChat official account (微信公众号) server push → canonical events.

GET URL check: ``signature = sha1(''.join(sorted([token, timestamp, nonce])))``, reply ``echostr``.
POST XML, plain or safe mode (``encrypt_type=aes``: ``msg_signature`` over token, timestamp,
nonce and ``Encrypt``; AES-256-CBC, key = b64decode(EncodingAESKey + "="), IV = key[:16], PKCS#7
padded to 32-byte blocks; plaintext = 16 random bytes + 4-byte length + xml + appid). Reply
``success``. Events are keyed by ``wechat_openid`` (and ``wechat_unionid`` when present).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from datetime import UTC, datetime
from typing import Any

from huiliu.connectors.base import (
    REPLAY_WINDOW_SECONDS,
    Authenticated,
    Connector,
    ConnectorResult,
    HttpReply,
    HttpRequest,
    TenantContext,
)
from huiliu.connectors.common import digest_id
from huiliu.errors import BadRequest, NotFound, Unauthorized, UnsupportedMediaType
from huiliu.models import CanonicalEvent, EventType, Source, build_identifiers

NAME = "wechat"
SUCCESS = HttpReply(200, "success", "text/plain")
XML_TYPES = frozenset({"text/xml", "application/xml", "text/plain", ""})
MAX_FIELDS = 64
EVENT_NAMES = {
    "subscribe": "WeChat Subscribed",
    "unsubscribe": "WeChat Unsubscribed",
    "scan": "WeChat QR Scanned",
    "click": "WeChat Menu Clicked",
    "view": "WeChat Menu Link Opened",
    "location": "WeChat Location Reported",
    "templatesendjobfinish": "WeChat Template Send Finished",
    "subscribe_msg_popup_event": "WeChat Subscription Notice Answered",
}


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8"), usedforsecurity=False).hexdigest()


def _check(given: str | None, expected: str, what: str) -> None:
    if not given:
        raise Unauthorized(f"{what} is required", reason="missing_signature")
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise Unauthorized(f"{what} does not match", reason="bad_signature")


def _check_timestamp(timestamp: str | None, now: datetime) -> None:
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Unauthorized("timestamp is required", reason="missing_timestamp")
    if abs(now.timestamp() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise Unauthorized("timestamp outside the 5-minute window", reason="stale_timestamp")


def parse_xml(data: bytes | str) -> dict[str, str]:
    """Flat WeChat XML → {tag: text}; safe against entity expansion and external entities."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, UnicodeError) as exc:
        raise BadRequest("body is not valid XML", reason="invalid_xml") from exc
    if root.tag != "xml":
        raise BadRequest("root element must be <xml>", reason="invalid_xml")
    fields: dict[str, str] = {}
    for child in list(root)[:MAX_FIELDS]:
        if len(child):
            fields[child.tag] = "".join(child.itertext()).strip()
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def aes_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("EncodingAESKey is not valid base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def decrypt(encrypted: str, encoding_aes_key: str, app_id: str) -> bytes:
    """Safe-mode ciphertext → inner XML bytes (checks padding, length and the appid)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = aes_key(encoding_aes_key)
    try:
        cipher_text = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("Encrypt is not base64", reason="invalid_ciphertext") from exc
    if not cipher_text or len(cipher_text) % 16:
        raise BadRequest("Encrypt has a bad length", reason="invalid_ciphertext")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(cipher_text) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 32 or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
        raise BadRequest("bad PKCS#7 padding", reason="invalid_ciphertext")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise BadRequest("plaintext too short", reason="invalid_ciphertext")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise BadRequest("plaintext length field is wrong", reason="invalid_ciphertext")
    xml, received_app_id = plain[20 : 20 + length], plain[20 + length :]
    if not hmac.compare_digest(received_app_id, app_id.encode()):
        raise Unauthorized("appid does not match", reason="bad_app_id")
    return xml


# A (timestamp, nonce) pair is bound to its first body for longer than the timestamp window.
NONCE_TTL_SECONDS = 3 * REPLAY_WINDOW_SECONDS


class WeChatConnector(Connector):
    name = NAME

    def authenticate(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> Authenticated:
        """Timestamp window + signature. Safe mode: ``msg_signature`` over the ``Encrypt`` element.

        Plain mode's ``signature`` covers token, timestamp and nonce but not the body, so the
        result carries a replay guard: the pipeline binds (timestamp, nonce) to the body's digest.
        """
        secrets = tenant.secrets.wechat
        if secrets is None:
            raise NotFound("unknown tenant or connector")
        query = request.query
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if request.method not in ("GET", "POST"):
            raise Unauthorized("WeChat pushes are GET or POST", reason="method_not_allowed")
        _check_timestamp(timestamp, now)
        if request.method == "GET":
            _check(query.get("signature"), sha1_signature(secrets.token, timestamp, nonce), "signature")
            return Authenticated(state="url_check")
        if query.get("encrypt_type", "raw").lower() == "aes":
            if not secrets.encoding_aes_key:
                raise Unauthorized(
                    "safe mode is not configured for this account", reason="aes_not_configured"
                )
            outer = parse_xml(request.body)
            encrypted = outer.get("Encrypt")
            if not encrypted:
                raise Unauthorized("Encrypt is required in safe mode", reason="missing_encrypt")
            expected = sha1_signature(secrets.token, timestamp, nonce, encrypted)
            _check(query.get("msg_signature"), expected, "msg_signature")
            return Authenticated(state=encrypted)
        _check(query.get("signature"), sha1_signature(secrets.token, timestamp, nonce), "signature")
        digest = hashlib.sha256(request.body).hexdigest()
        guard = (f"{tenant.tenant_id}#{NAME}-nonce#{timestamp}#{nonce}", digest)
        return Authenticated(state="plain", replay_guard=guard)

    def translate(
        self, request: HttpRequest, tenant: TenantContext, now: datetime, auth: Authenticated
    ) -> ConnectorResult:
        secrets = tenant.secrets.wechat
        assert secrets is not None  # authenticate checked
        if auth.state == "url_check":
            echo = request.query.get("echostr", "")
            return ConnectorResult(reply=HttpReply(200, echo, "text/plain"), ingest=False)
        if auth.state == "plain" and secrets.mode == "safe":
            # Plain POSTs are authenticated only by a body-less signature: in safe mode, refuse them.
            raise Unauthorized(
                "this account is in safe mode: POSTs must be encrypted (encrypt_type=aes)",
                reason="safe_mode_required",
            )
        if request.content_type not in XML_TYPES:
            raise UnsupportedMediaType(f"expected text/xml, got {request.content_type!r}")
        if auth.state == "plain":
            fields = parse_xml(request.body)
        else:
            assert secrets.encoding_aes_key
            try:
                inner = decrypt(str(auth.state), secrets.encoding_aes_key, secrets.app_id)
            except ValueError as exc:  # a mis-configured key: the signature passed, so it is ours
                raise Unauthorized(str(exc), reason="aes_not_configured") from exc
            fields = parse_xml(inner)
        event = translate(fields, tenant, now)
        return ConnectorResult(events=[event], reply=SUCCESS, delivery_id=event.message_id)


def translate(fields: dict[str, str], tenant: TenantContext, now: datetime) -> CanonicalEvent:
    openid = fields.get("FromUserName")
    if not openid:
        raise BadRequest("FromUserName is required", reason="missing_from_user")
    created = fields.get("CreateTime", "")
    if not (created.isascii() and created.isdigit()) or len(created) > 12:
        raise BadRequest("CreateTime is required", reason="missing_create_time")
    msg_type = fields.get("MsgType", "").lower()
    if not msg_type:
        raise BadRequest("MsgType is required", reason="missing_msg_type")
    try:
        timestamp = datetime.fromtimestamp(int(created), tz=UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise BadRequest("CreateTime is out of range", reason="invalid_create_time") from exc
    traits: dict[str, Any] = {}
    context: dict[str, Any] = {"wechat": {"account": fields.get("ToUserName"), "msg_type": msg_type}}
    properties: dict[str, Any] = {}
    if msg_type == "event":
        raw_event = fields.get("Event", "")
        if not raw_event:
            raise BadRequest("Event is required", reason="missing_event")
        kind = raw_event.lower()
        name = EVENT_NAMES.get(kind, f"WeChat {raw_event}"[:200])
        event_key = fields.get("EventKey") or None
        if kind == "subscribe":
            if event_key and event_key.startswith("qrscene_"):
                properties["scene"] = event_key[len("qrscene_") :]
            if fields.get("Ticket"):
                properties["ticket"] = fields["Ticket"]
            traits["consent"] = {"wechat": True}
            context["consent"] = {"wechat": True}
        elif kind == "unsubscribe":
            traits["consent"] = {"wechat": False}
            context["consent"] = {"wechat": False}
        elif kind == "scan":
            properties["scene"] = event_key
            if fields.get("Ticket"):
                properties["ticket"] = fields["Ticket"]
        elif kind == "click":
            properties["key"] = event_key
        elif kind == "view":
            properties["url"] = event_key
            if fields.get("MenuId"):
                properties["menu_id"] = fields["MenuId"]
        elif kind == "location":
            properties.update(
                {k.lower(): fields[k] for k in ("Latitude", "Longitude", "Precision") if k in fields}
            )
        elif kind == "templatesendjobfinish":
            properties.update({"msg_id": fields.get("MsgID"), "status": fields.get("Status")})
        else:
            properties.update({k: v for k, v in fields.items() if k not in ("ToUserName", "FromUserName")})
        message_id = fields.get("MsgId") or f"{openid}:{created}:{raw_event}"
    else:
        name = "WeChat Message Received"
        properties = {"msg_type": msg_type}
        for key in ("Content", "PicUrl", "MediaId", "Format", "Recognition", "Title", "Url", "Label"):
            if fields.get(key):
                properties[key.lower()] = fields[key]
        message_id = fields.get("MsgId") or f"{openid}:{created}:{msg_type}"
    identifiers = build_identifiers(
        [("wechat_openid", openid), ("wechat_unionid", fields.get("UnionId") or fields.get("UnionID"))],
        tenant.settings.default_region,
    )
    return CanonicalEvent(
        tenant_id=tenant.tenant_id,
        message_id=message_id if len(message_id) <= 200 else "wx-" + digest_id(message_id),
        type=EventType.TRACK,
        event=name,
        timestamp=timestamp,
        received_at=now,
        source=Source(connector=NAME, account=fields.get("ToUserName") or None),
        identifiers=identifiers,
        traits=traits,
        properties={k: v for k, v in properties.items() if v is not None},
        context=context,
    )
