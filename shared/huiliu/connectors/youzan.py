"""Youzan (有赞云) message push → canonical events.

Wire format (CONNECTORS.md): POST JSON ``{client_id, id, kdt_id, kdt_name, type, status, msg,
msg_id, version, sendCount, sign, test, mode}`` where ``msg`` is the entity as URL-encoded JSON.
Signature: header ``Event-Sign`` = hex MD5(client_id + raw body + client_secret). Reply
``{"code":0,"msg":"success"}``. ``test: true`` pushes are acknowledged and not ingested.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote_to_bytes
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huiliu.connectors.base import ConnectorResult, HttpReply, HttpRequest, TenantContext
from huiliu.connectors.common import as_text, digest_id, money, parse_json_object, require_json_content_type
from huiliu.errors import BadRequest, NotFound, Unauthorized
from huiliu.models import CanonicalEvent, EventType, Source, build_identifiers

NAME = "youzan"
SUCCESS = HttpReply(200, '{"code":0,"msg":"success"}')
CURRENCY = "CNY"
# Trade message types → Segment e-commerce event names.
TRADE_EVENTS = {
    "trade_TradeCreate": "Order Placed",
    "trade_TradePaid": "Order Paid",
    "trade_TradeBuyerPay": "Order Paid",
    "trade_TradeSellerShip": "Order Shipped",
    "trade_TradePartlySellerShip": "Order Shipped",
    "trade_TradeSuccess": "Order Completed",
    "trade_TradeClose": "Order Cancelled",
    "trade_TradeMemoModified": "Order Updated",
}
# Legacy TRADE_ORDER_STATE carries the order state in ``status``.
LEGACY_TRADE_STATES = {
    "WAIT_BUYER_PAY": "Order Placed",
    "WAIT_SELLER_SEND_GOODS": "Order Paid",
    "WAIT_BUYER_CONFIRM_GOODS": "Order Shipped",
    "TRADE_SUCCESS": "Order Completed",
    "TRADE_CLOSED": "Order Cancelled",
}
_REFUND_DONE = ("success", "agree", "refunded", "finished")


def md5_hex(*parts: str | bytes) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
    return digest.hexdigest()


def verify(request: HttpRequest, body: dict[str, Any], client_id: str, client_secret: str) -> None:
    """Event-Sign over the raw body; falls back to the body ``sign`` when the header is absent."""
    header = request.header("event-sign")
    if header:
        expected = md5_hex(client_id, request.body, client_secret)
        if hmac.compare_digest(header.strip().lower().encode(), expected.encode()):
            return
        raise Unauthorized("Event-Sign does not match", reason="bad_signature")
    sign = body.get("sign")
    msg = body.get("msg")
    if isinstance(sign, str) and isinstance(msg, str):
        expected = md5_hex(client_id, msg, client_secret)
        if hmac.compare_digest(sign.strip().lower().encode(), expected.encode()):
            return
        raise Unauthorized("sign does not match", reason="bad_signature")
    raise Unauthorized("Event-Sign header is required", reason="missing_signature")


def decode_msg(raw: Any) -> dict[str, Any]:
    """``msg``: URL-encoded JSON (or, for some newer types, a plain JSON string or object)."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise BadRequest("msg must be a string", reason="invalid_msg")
    for decode in (lambda t: unquote_to_bytes(t).decode("utf-8") if "%" in t else t, lambda t: t):
        try:
            value = json.loads(decode(raw))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            continue
        if isinstance(value, dict):
            return value
    raise BadRequest("msg is not URL-encoded JSON", reason="invalid_msg")


def local_time(value: Any, tz: str) -> datetime | None:
    """Youzan times: ``"2026-01-02 03:04:05"`` in the shop's time zone, or unix seconds/ms."""
    from huiliu.connectors.common import optional_timestamp

    if isinstance(value, str) and len(value) == 19 and value[10] == " ":
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("Asia/Shanghai")
        try:
            return datetime.fromisoformat(value).replace(tzinfo=zone)
        except ValueError:
            return None
    try:
        return optional_timestamp(value)
    except BadRequest:
        return None


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _first(*values: Any) -> Any:
    for value in values:
        if value not in (None, ""):
            return value
    return None


def trade_event_name(kind: str, status: str | None) -> str | None:
    if kind in TRADE_EVENTS:
        return TRADE_EVENTS[kind]
    if kind == "TRADE_ORDER_STATE":
        return LEGACY_TRADE_STATES.get(status or "", "Order Updated")
    if kind.startswith("trade_refund_"):
        return "Order Refunded" if any(w in kind.lower() for w in _REFUND_DONE) else "Refund Updated"
    return None


def trade_properties(biz_id: str | None, msg: dict[str, Any], event_name: str) -> tuple[dict[str, Any], dict]:
    """(properties, buyer) for a trade message; tolerant of the several msg shapes Youzan sends."""
    full = msg.get("full_order_info") if isinstance(msg.get("full_order_info"), dict) else msg
    order_info = full.get("order_info") if isinstance(full.get("order_info"), dict) else {}
    buyer = full.get("buyer_info") if isinstance(full.get("buyer_info"), dict) else {}
    pay = full.get("pay_info") if isinstance(full.get("pay_info"), dict) else {}
    orders = full.get("orders") if isinstance(full.get("orders"), list) else []
    products = []
    for line in orders[:500]:
        if not isinstance(line, dict):
            continue
        products.append(
            {
                k: v
                for k, v in {
                    "product_id": _first(line.get("item_id"), line.get("outer_item_id")),
                    "sku": _first(line.get("outer_sku_id"), line.get("sku_id")),
                    "name": line.get("title"),
                    "price": money(line.get("price")),
                    "quantity": line.get("num"),
                }.items()
                if v is not None
            }
        )
    order_id = _first(order_info.get("tid"), msg.get("tid"), biz_id)
    if event_name == "Order Refunded" or event_name == "Refund Updated":
        revenue = money(_first(msg.get("refunded_fee"), msg.get("refund_fee"), msg.get("refund_amount")))
    else:
        revenue = money(
            _first(pay.get("payment"), pay.get("total_fee"), msg.get("payment"), msg.get("total_fee"))
        )
    props: dict[str, Any] = {
        "order_id": str(order_id) if order_id is not None else None,
        "revenue": revenue,
        "currency": CURRENCY,
        "products": products,
        "status": _first(order_info.get("status"), msg.get("status")),
        "refund_id": msg.get("refund_id"),
    }
    return {k: v for k, v in props.items() if v is not None}, buyer


class YouzanConnector:
    name = NAME

    def handle(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> ConnectorResult:
        secrets = tenant.secrets.youzan
        if secrets is None:
            raise NotFound("unknown tenant or connector")
        if request.method != "POST":
            raise BadRequest("Youzan pushes are POST", reason="method_not_allowed", status=405)
        require_json_content_type(request.content_type)
        body = parse_json_object(request.body)
        verify(request, body, secrets.client_id, secrets.client_secret)
        client_id = body.get("client_id")
        if client_id is not None and str(client_id) != secrets.client_id:
            raise Unauthorized("client_id does not belong to this tenant", reason="bad_client_id")
        if body.get("test") is True or body.get("test") == "true":
            return ConnectorResult(reply=SUCCESS, ingest=False, delivery_id=str(body.get("msg_id") or "test"))
        kind = as_text(body.get("type"), field="type")
        assert kind is not None
        biz_id = as_text(body.get("id"), field="id", required=False)
        status = as_text(body.get("status"), field="status", required=False)
        version = body.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int | str)):
            raise BadRequest("version must be a number", reason="invalid_version")
        try:
            version_number = int(version) if version not in (None, "") else None
        except ValueError as exc:
            raise BadRequest("version must be a number", reason="invalid_version") from exc
        msg_id = as_text(body.get("msg_id"), field="msg_id", required=False)
        message_id = msg_id or "yz-" + digest_id(kind, biz_id, version_number, status)
        msg = decode_msg(body.get("msg"))
        event = self._translate(kind, status, biz_id, msg, body, tenant, now, message_id)
        version_key = f"{tenant.tenant_id}#{NAME}#version#{kind}#{biz_id}" if biz_id else None
        return ConnectorResult(
            events=[event],
            reply=SUCCESS,
            delivery_id=message_id,
            version_key=version_key if version_number is not None else None,
            version=version_number,
        )

    def _translate(
        self,
        kind: str,
        status: str | None,
        biz_id: str | None,
        msg: dict[str, Any],
        body: dict[str, Any],
        tenant: TenantContext,
        now: datetime,
        message_id: str,
    ) -> CanonicalEvent:
        region = tenant.settings.default_region
        tz = tenant.settings.timezone
        context = {
            "youzan": {
                k: v
                for k, v in {
                    "type": kind,
                    "status": status,
                    "id": biz_id,
                    "kdt_id": body.get("kdt_id"),
                    "version": body.get("version"),
                    "send_count": body.get("sendCount"),
                }.items()
                if v is not None
            }
        }
        account = str(body["kdt_id"]) if body.get("kdt_id") not in (None, "") else None
        common = {
            "tenant_id": tenant.tenant_id,
            "message_id": message_id,
            "received_at": now,
            "source": Source(connector=NAME, account=account),
            "context": context,
        }
        event_name = trade_event_name(kind, status)
        if event_name:
            props, buyer = trade_properties(biz_id, msg, event_name)
            full = msg.get("full_order_info") if isinstance(msg.get("full_order_info"), dict) else msg
            when = local_time(
                _first(
                    _dig(full, "order_info", "update_time"),
                    _dig(full, "order_info", "pay_time"),
                    _dig(full, "order_info", "created"),
                    msg.get("update_time"),
                    msg.get("modified"),
                ),
                tz,
            )
            identifiers = build_identifiers(
                [
                    ("phone", _first(buyer.get("buyer_phone"), msg.get("buyer_phone"), msg.get("mobile"))),
                    ("youzan_open_id", _first(buyer.get("yz_open_id"), msg.get("yz_open_id"))),
                    ("wechat_openid", buyer.get("outer_user_id")),
                ],
                region,
            )
            return CanonicalEvent(
                type=EventType.TRACK,
                event=event_name,
                timestamp=when or now,
                identifiers=identifiers,
                properties=props,
                **common,
            )
        if kind in ("SCRM_CUSTOMER_EVENT", "SCRM_CUSTOMER_CARD"):
            return self._identify(kind, status, msg, region, tz, now, common)
        if kind == "POINTS":
            identifiers = self._person(msg, region)
            props = {k: msg.get(k) for k in ("amount", "total", "description", "event_type") if k in msg}
            return CanonicalEvent(
                type=EventType.TRACK,
                event="Points Changed",
                timestamp=local_time(_first(msg.get("event_time"), msg.get("create_time")), tz) or now,
                identifiers=identifiers,
                properties=props,
                **common,
            )
        # Anything else (coupons, new types) is still ingested, never dropped silently.
        return CanonicalEvent(
            type=EventType.TRACK,
            event=f"Youzan {kind}"[:200],
            timestamp=now,
            identifiers=self._person(msg, region),
            properties={"status": status, "msg": msg} if status else {"msg": msg},
            **common,
        )

    @staticmethod
    def _person(msg: dict[str, Any], region: str) -> list:
        account_type = str(msg.get("account_type") or "").lower()
        account_id = msg.get("account_id")
        return build_identifiers(
            [
                ("phone", _first(msg.get("mobile"), account_id if account_type == "mobile" else None)),
                (
                    "youzan_open_id",
                    _first(
                        msg.get("yz_open_id"),
                        account_id if account_type in ("youzanaccount", "yz_open_id") else None,
                    ),
                ),
                ("member_id", _first(msg.get("card_no"), msg.get("member_id"))),
                ("wechat_openid", account_id if account_type in ("fansid", "wechat_openid") else None),
            ],
            region,
        )

    def _identify(
        self,
        kind: str,
        status: str | None,
        msg: dict[str, Any],
        region: str,
        tz: str,
        now: datetime,
        common: dict[str, Any],
    ) -> CanonicalEvent:
        traits: dict[str, Any] = {}
        for source_key, trait in (
            ("name", "name"),
            ("gender", "gender"),
            ("birthday", "birthday"),
            ("show_name", "nickname"),
            ("avatar", "avatar"),
        ):
            if msg.get(source_key) not in (None, ""):
                traits[trait] = msg[source_key]
        if kind == "SCRM_CUSTOMER_CARD":
            traits["youzan_member_card"] = {
                k: v
                for k, v in {
                    "card_no": msg.get("card_no"),
                    "card_alias": msg.get("card_alias"),
                    "status": status,
                }.items()
                if v is not None
            }
        return CanonicalEvent(
            type=EventType.IDENTIFY,
            timestamp=local_time(_first(msg.get("event_time"), msg.get("update_time")), tz) or now,
            identifiers=self._person(msg, region),
            traits=traits,
            **common,
        )
