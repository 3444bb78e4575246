"""Youzan (有赞云) message push → canonical events.

Wire format (CONNECTORS.md): POST JSON ``{client_id, id, kdt_id, kdt_name, type, status, msg,
msg_id, version, sendCount, sign, test, mode}`` where ``msg`` is the entity as URL-encoded JSON.
Signature: header ``Event-Sign`` = hex MD5(client_id + raw body + client_secret). Reply
``{"code":0,"msg":"success"}``. ``test: true`` pushes are acknowledged and not ingested.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import unquote_to_bytes
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huiliu.connectors.base import (
    Authenticated,
    Connector,
    ConnectorResult,
    HttpReply,
    HttpRequest,
    TenantContext,
)
from huiliu.connectors.common import (
    NumberOverflow,
    as_text,
    digest_id,
    loads,
    money,
    parse_json_object,
    require_json_post,
)
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
MAX_VERSION = 2**63
_REFUND_DONE = ("success", "agree", "refunded", "finished")


def md5_hex(*parts: str | bytes) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
    return digest.hexdigest()


def verify(
    request: HttpRequest, client_id: str, client_secret: str, *, allow_body_sign: bool = False
) -> dict[str, Any] | None:
    """Event-Sign over the raw body (required). Returns the parsed body when it had to be parsed.

    The body ``sign`` covers only ``msg`` — not ``type``, ``id``, ``msg_id``, ``version`` or
    ``test``, and no timestamp — so a captured push could be replayed as another type under a new
    ``msg_id``. It is accepted only when the tenant opted in (``allow_body_sign``).
    """
    header = request.header("event-sign")
    if header:
        expected = md5_hex(client_id, request.body, client_secret)
        if hmac.compare_digest(header.strip().lower().encode(), expected.encode()):
            return None
        raise Unauthorized("Event-Sign does not match", reason="bad_signature")
    if not allow_body_sign:
        raise Unauthorized("Event-Sign header is required", reason="missing_signature")
    body = parse_json_object(request.body)
    sign = body.get("sign")
    msg = body.get("msg")
    if isinstance(sign, str) and isinstance(msg, str):
        expected = md5_hex(client_id, msg, client_secret)
        if hmac.compare_digest(sign.strip().lower().encode(), expected.encode()):
            return body
        raise Unauthorized("sign does not match", reason="bad_signature")
    raise Unauthorized("Event-Sign header is required", reason="missing_signature")


def is_heartbeat(value: Any) -> bool:
    """``test`` as Youzan sends it: true, 1, "true" or "1" mark a heartbeat / test push."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("true", "1")


def parse_version(value: Any) -> int | None:
    """``version``: an integer 0 ≤ v < 2**63 (it is stored as a DynamoDB number), or absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest("version must be a number", reason="invalid_version")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise BadRequest("version must be a number", reason="invalid_version")
        value = int(text)
    if not 0 <= value < MAX_VERSION:
        raise BadRequest("version is out of range (0 ≤ version < 2**63)", reason="invalid_version")
    return value


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
            value = loads(decode(raw))  # the body's bounds: 1e400 refused, lone surrogates → U+FFFD
        except NumberOverflow as exc:
            raise BadRequest(f"msg holds a number beyond a double: {exc}", reason="invalid_number") from exc
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


def _id_text(value: Any) -> str | None:
    """An id as text (Youzan sends numbers; Shopify's ``product_id`` is a string too)."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value)


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


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (Youzan's shapes vary)."""
    return value if isinstance(value, dict) else {}


def trade_properties(biz_id: str | None, msg: dict[str, Any], event_name: str) -> tuple[dict[str, Any], dict]:
    """(properties, buyer) for a trade message; tolerant of the several msg shapes Youzan sends."""
    full = _mapping(msg.get("full_order_info")) or msg
    order_info = _mapping(full.get("order_info"))
    buyer = _mapping(full.get("buyer_info"))
    pay = _mapping(full.get("pay_info"))
    orders = full.get("orders")
    orders = orders if isinstance(orders, list) else []
    products = []
    for line in orders[:500]:
        if not isinstance(line, dict):
            continue
        products.append(
            {
                k: v
                for k, v in {
                    "product_id": _id_text(_first(line.get("item_id"), line.get("outer_item_id"))),
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


class YouzanConnector(Connector):
    name = NAME

    def authenticate(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> Authenticated:
        secrets = tenant.secrets.youzan
        if secrets is None:
            raise NotFound("unknown tenant or connector")
        body = verify(
            request, secrets.client_id, secrets.client_secret, allow_body_sign=secrets.allow_body_sign
        )
        return Authenticated(state=body)

    def translate(
        self, request: HttpRequest, tenant: TenantContext, now: datetime, auth: Authenticated
    ) -> ConnectorResult:
        secrets = tenant.secrets.youzan
        assert secrets is not None  # authenticate checked
        require_json_post(request, "Youzan pushes")
        body = auth.state if isinstance(auth.state, dict) else parse_json_object(request.body)
        client_id = body.get("client_id")
        if client_id is not None and str(client_id) != secrets.client_id:
            raise Unauthorized("client_id does not belong to this tenant", reason="bad_client_id")
        if is_heartbeat(body.get("test")):
            return ConnectorResult(reply=SUCCESS, ingest=False, delivery_id=str(body.get("msg_id") or "test"))
        kind = as_text(body.get("type"), field="type")
        assert kind is not None
        biz_id = as_text(body.get("id"), field="id", required=False)
        status = as_text(body.get("status"), field="status", required=False)
        as_text(body.get("kdt_id"), field="kdt_id", required=False)  # a scalar, or 400 invalid_kdt_id
        version_number = parse_version(body.get("version"))
        msg_id = as_text(body.get("msg_id"), field="msg_id", required=False)
        message_id = msg_id or "yz-" + digest_id(kind, biz_id, version_number, status)
        if isinstance(auth.state, dict):
            # Authenticated by the body ``sign``, which covers ``msg`` only: ``msg_id`` is not
            # signed, so a replay under a new msg_id must not be new. Dedupe on the signed msg.
            message_id = "yz-msg-" + digest_id(body.get("msg"))
        msg = decode_msg(body.get("msg"))
        events = self._translate(kind, status, biz_id, msg, body, tenant, now, message_id)
        version_key = f"{tenant.tenant_id}#{NAME}#version#{kind}#{biz_id}" if biz_id else None
        return ConnectorResult(
            events=events,
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
    ) -> list[CanonicalEvent]:
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
        common: dict[str, Any] = {
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
                    # Youzan's own ids, not the tenant's official-account openid (namespace!).
                    ("youzan_outer_user_id", buyer.get("outer_user_id")),
                ],
                region,
            )
            return [
                CanonicalEvent(
                    type=EventType.TRACK,
                    event=event_name,
                    timestamp=when or now,
                    identifiers=identifiers,
                    properties=props,
                    **common,
                )
            ]
        if kind in ("SCRM_CUSTOMER_EVENT", "SCRM_CUSTOMER_CARD"):
            return [self._identify(kind, status, msg, region, tz, now, common)]
        if kind == "POINTS":
            return self._points(msg, region, tz, now, common)
        # Anything else (coupons, new types) is still ingested, never dropped silently.
        return [
            CanonicalEvent(
                type=EventType.TRACK,
                event=f"Youzan {kind}"[:200],
                timestamp=now,
                identifiers=self._person(msg, region),
                properties={"status": status, "msg": msg} if status else {"msg": msg},
                **common,
            )
        ]

    def _points(
        self, msg: dict[str, Any], region: str, tz: str, now: datetime, common: dict[str, Any]
    ) -> list[CanonicalEvent]:
        """POINTS → ``identify`` carrying the points total as a trait, plus a ``Points Changed`` track."""
        identifiers = self._person(msg, region)
        when = local_time(_first(msg.get("event_time"), msg.get("create_time")), tz) or now
        props: dict[str, Any] = {
            k: msg.get(k) for k in ("amount", "total", "description", "event_type") if k in msg
        }
        events = []
        total = msg.get("total")
        if isinstance(total, int | float | str) and not isinstance(total, bool) and total != "":
            events.append(
                CanonicalEvent(
                    type=EventType.IDENTIFY,
                    timestamp=when,
                    identifiers=identifiers,
                    traits={"youzan_points": total},
                    **common,
                )
            )
        track_id = common["message_id"] + "#points"
        track_common: dict[str, Any] = {
            **common,
            "message_id": track_id if len(track_id) <= 200 else "yz-" + digest_id(track_id),
        }
        events.append(
            CanonicalEvent(
                type=EventType.TRACK,
                event="Points Changed",
                timestamp=when,
                identifiers=identifiers,
                properties=props,
                **track_common,
            )
        )
        return events

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
                # FansID is Youzan's fan id, not a WeChat official-account openid.
                (
                    "youzan_fans_id",
                    _first(msg.get("fans_id"), account_id if account_type == "fansid" else None),
                ),
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
