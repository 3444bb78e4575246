"""Fuzzing every connector: whatever arrives, the only failure is a clean HuiliuError (a 4xx).

Bodies are signed correctly so the fuzzing reaches the parsers, not just the signature checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC
from typing import Any
from xml.sax.saxutils import escape

from huiliu.connectors.base import ConnectorResult, HttpRequest, TenantContext
from huiliu.connectors.segment import SegmentConnector
from huiliu.connectors.shopify import ShopifyConnector
from huiliu.connectors.signed_json import SignedJsonConnector, sign
from huiliu.connectors.wechat import WeChatConnector
from huiliu.connectors.youzan import YouzanConnector
from huiliu.errors import HuiliuError
from huiliu.ingest.fakes import StaticDirectory, memory_pipeline
from huiliu.ingest.importer import ImportMapping, RowRejected, RowTranslator
from huiliu.tenants import TenantSettings, new_demo_secrets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.connectors.connector_helpers import NOW

TENANT = TenantContext("acme", TenantSettings(tenant_id="acme"), new_demo_secrets())
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def keyed(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts over the fields a source really sends (plus noise), with arbitrary values."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), json_values, max_size=len(keys))


def outcome(connector: Any, request: HttpRequest) -> ConnectorResult | HuiliuError:
    try:
        result = connector.handle(request, TENANT, NOW)
    except HuiliuError as exc:
        rejected = exc
    else:
        rejected = None
    if rejected is not None:
        assert 400 <= rejected.status < 500
        assert rejected.reason
        return rejected
    for event in result.events:
        json.dumps(event.model_dump(mode="json"))
    return result


def post(path: str, body: bytes, headers: dict[str, str], query: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest("POST", path, {"content-type": "application/json", **headers}, query or {}, body)


YOUZAN_KEYS = ["client_id", "id", "kdt_id", "type", "status", "msg", "msg_id", "version", "test", "sendCount"]
YOUZAN_TYPES = [
    "trade_TradePaid",
    "trade_TradeSuccess",
    "trade_refund_RefundSuccess",
    "SCRM_CUSTOMER_EVENT",
    "SCRM_CUSTOMER_CARD",
    "POINTS",
    "TRADE_ORDER_STATE",
    "x",
]


@FUZZ
@given(body=keyed(YOUZAN_KEYS), kind=st.sampled_from(YOUZAN_TYPES), msg=json_values, encode=st.booleans())
def test_youzan_accepts_or_cleanly_rejects_any_signed_body(
    body: dict, kind: str, msg: Any, encode: bool
) -> None:
    from urllib.parse import quote

    secrets = TENANT.secrets.youzan
    assert secrets
    body = {**body, "type": kind, "msg": quote(json.dumps(msg)) if encode else msg}
    raw = json.dumps(body).encode()
    signature = hashlib.md5(secrets.client_id.encode() + raw + secrets.client_secret.encode()).hexdigest()
    outcome(YouzanConnector(), post("/v1/hooks/youzan/acme", raw, {"event-sign": signature}))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_youzan_accepts_or_cleanly_rejects_any_signed_bytes(raw: bytes) -> None:
    secrets = TENANT.secrets.youzan
    assert secrets
    signature = hashlib.md5(secrets.client_id.encode() + raw + secrets.client_secret.encode()).hexdigest()
    outcome(YouzanConnector(), post("/v1/hooks/youzan/acme", raw, {"event-sign": signature}))


def wechat_request(body: bytes) -> HttpRequest:
    secrets = TENANT.secrets.wechat
    assert secrets
    ts = str(int(NOW.timestamp()))
    signature = hashlib.sha1("".join(sorted([secrets.token, ts, "n"])).encode()).hexdigest()
    query = {"signature": signature, "timestamp": ts, "nonce": "n"}
    return HttpRequest("POST", "/v1/hooks/wechat/acme", {"content-type": "text/xml"}, query, body)


WECHAT_TAGS = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "EventKey",
    "MsgId",
    "Ticket",
    "Content",
    "UnionId",
    "Latitude",
]


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(WECHAT_TAGS),
        st.text(max_size=40)
        | st.sampled_from(
            [
                "event",
                "subscribe",
                "unsubscribe",
                "SCAN",
                "CLICK",
                "VIEW",
                "text",
                "1767323045",
                "99999999999999",
            ]
        ),
    )
)
def test_wechat_accepts_or_cleanly_rejects_any_signed_xml(fields: dict[str, str]) -> None:
    def clean(text: str) -> str:
        return "".join(
            c for c in text if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
        )

    body = "<xml>" + "".join(f"<{k}>{escape(clean(v))}</{k}>" for k, v in fields.items()) + "</xml>"
    outcome(WeChatConnector(), wechat_request(body.encode()))


@FUZZ
@given(
    raw=st.binary(max_size=300)
    | st.text(max_size=200).map(lambda t: f"<xml>{t}</xml>".encode("utf-8", "replace"))
)
def test_wechat_accepts_or_cleanly_rejects_any_signed_bytes(raw: bytes) -> None:
    outcome(WeChatConnector(), wechat_request(raw))


@FUZZ
@given(
    raw=st.binary(max_size=200),
    query=st.dictionaries(
        st.sampled_from(["encrypt_type", "msg_signature", "timestamp", "nonce"]), st.text(max_size=20)
    ),
)
def test_wechat_safe_mode_with_garbage_is_cleanly_rejected(raw: bytes, query: dict[str, str]) -> None:
    request = HttpRequest("POST", "/", {"content-type": "text/xml"}, {**query, "encrypt_type": "aes"}, raw)
    assert isinstance(outcome(WeChatConnector(), request), HuiliuError)


SHOPIFY_KEYS = [
    "id",
    "email",
    "phone",
    "customer",
    "line_items",
    "total_price",
    "currency",
    "created_at",
    "updated_at",
    "order_id",
    "transactions",
    "refund_line_items",
    "first_name",
]
SHOPIFY_TOPICS = [
    "customers/create",
    "customers/update",
    "orders/create",
    "orders/paid",
    "orders/fulfilled",
    "orders/cancelled",
    "refunds/create",
    "app/uninstalled",
    "",
]


@FUZZ
@given(body=keyed(SHOPIFY_KEYS), topic=st.sampled_from(SHOPIFY_TOPICS), webhook_id=st.text(max_size=300))
def test_shopify_accepts_or_cleanly_rejects_any_signed_body(body: dict, topic: str, webhook_id: str) -> None:
    secrets = TENANT.secrets.shopify
    assert secrets
    raw = json.dumps(body).encode()
    mac = base64.b64encode(hmac.new(secrets.secret.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {"x-shopify-hmac-sha256": mac, "x-shopify-topic": topic, "x-shopify-webhook-id": webhook_id}
    outcome(ShopifyConnector(), post("/v1/hooks/shopify/acme", raw, headers))


SEGMENT_KEYS = [
    "userId",
    "anonymousId",
    "messageId",
    "event",
    "traits",
    "properties",
    "context",
    "timestamp",
    "sentAt",
    "originalTimestamp",
    "type",
    "previousId",
    "groupId",
    "name",
]


@FUZZ
@given(
    message=keyed(SEGMENT_KEYS),
    call=st.sampled_from(["identify", "track", "page", "screen", "alias", "group", "batch", "nope"]),
    batch=st.lists(keyed(SEGMENT_KEYS), max_size=4),
)
def test_segment_accepts_or_cleanly_rejects_any_body(message: dict, call: str, batch: list) -> None:
    body = {"batch": batch, **message} if call == "batch" else message
    outcome(SegmentConnector(), post(f"/v1/{call}", json.dumps(body).encode(), {}))


SIGNED_KEYS = [
    "type",
    "person",
    "traits",
    "event",
    "order_id",
    "revenue",
    "currency",
    "products",
    "properties",
    "message_id",
    "timestamp",
    "batch",
    "context",
]


@FUZZ
@given(
    body=keyed(SIGNED_KEYS),
    kind=st.sampled_from(["customer", "order", "event", "x"]),
    person=keyed(["email", "phone", "user_id", "member_id", "external_ids"]),
)
def test_signed_json_accepts_or_cleanly_rejects_any_signed_body(body: dict, kind: str, person: dict) -> None:
    secrets = TENANT.secrets.signed_json
    assert secrets
    raw = json.dumps({**body, "type": kind, "person": person}).encode()
    ts = str(int(NOW.timestamp()))
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + sign(secrets.secret, "m", ts, raw),
    }
    outcome(SignedJsonConnector(), post("/v1/hooks/signed-json/acme", raw, headers))


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/v1/track",
            "/v1/batch",
            "/v1/hooks/youzan/acme",
            "/v1/hooks/wechat/acme",
            "/v1/hooks/shopify/acme",
            "/v1/hooks/signed-json/acme",
            "/v1/hooks/x/y",
            "/",
        ]
    )
    | st.text(max_size=40),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "content-type",
                "content-encoding",
                "authorization",
                "event-sign",
                "x-shopify-topic",
                "webhook-signature",
                "webhook-timestamp",
                "webhook-id",
                "x-correlation-id",
            ]
        ),
        st.text(max_size=30),
    ),
    body=st.binary(max_size=200),
)
def test_the_pipeline_answers_anything_with_a_4xx_or_success_never_a_crash(
    path: str, method: str, headers: dict[str, str], body: bytes
) -> None:
    pipeline = memory_pipeline(
        StaticDirectory({"acme": (TENANT.settings, TENANT.secrets)}), clock=lambda: NOW
    )

    reply = pipeline.handle(HttpRequest(method, path, headers, {}, body))

    assert reply.status < 500
    assert json.loads(reply.body) if reply.status >= 400 else True


@FUZZ
@given(
    row=st.dictionaries(
        st.sampled_from(
            [
                "email",
                "phone",
                "user_id",
                "order_id",
                "revenue",
                "timestamp",
                "event",
                "type",
                "trait.x",
                "property.y",
                "other",
                "currency",
                "message_id",
            ]
        ),
        st.text(max_size=30)
        | st.sampled_from(["13800138000", "a@b.co", "2026-01-02 03:04:05", "12.5", "track"]),
    )
)
def test_csv_rows_translate_or_are_rejected_with_a_reason(row: dict[str, str]) -> None:
    translator = RowTranslator(ImportMapping(), "acme", "CN", "Asia/Shanghai", "f", "imports/acme/f.csv", NOW)
    reason = "translated"
    try:
        translator.translate(2, row)
    except RowRejected as exc:
        reason = exc.reason
    assert reason


extreme_times = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59.999999+14:00",
            "0001-01-01T00:00:00-12:00",
            "1970-01-01T00:00:00Z",
            "",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)
extreme_numbers = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([2**63 - 1, 2**63, -1, 0, 10**40]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="0123456789-", max_size=60),
)


def in_progress_keys(pipeline: Any) -> list[str]:
    return [k for k, v in pipeline.dedupe.items.items() if v.get("status") == "IN_PROGRESS"]


@FUZZ
@given(original=extreme_times, sent_at=extreme_times, timestamp=extreme_times)
def test_segment_extreme_client_times_get_a_4xx_or_success_never_a_503(
    original: Any, sent_at: Any, timestamp: Any
) -> None:
    pipeline = memory_pipeline(
        StaticDirectory({"acme": (TENANT.settings, TENANT.secrets)}), clock=lambda: NOW
    )
    assert TENANT.secrets.segment
    body = {
        "writeKey": TENANT.secrets.segment.write_key,
        "userId": "u",
        "event": "E",
        "originalTimestamp": original,
        "sentAt": sent_at,
        "timestamp": timestamp,
    }

    reply = pipeline.handle(post("/v1/track", json.dumps(body).encode(), {}))

    assert reply.status < 500, reply.body
    assert in_progress_keys(pipeline) == []


@FUZZ
@given(version=extreme_numbers, kdt_id=extreme_numbers | json_values, test=json_values)
def test_youzan_extreme_numbers_get_a_4xx_or_success_never_a_503(
    version: Any, kdt_id: Any, test: Any
) -> None:
    pipeline = memory_pipeline(
        StaticDirectory({"acme": (TENANT.settings, TENANT.secrets)}), clock=lambda: NOW
    )
    secrets = TENANT.secrets.youzan
    assert secrets
    body = {
        "client_id": secrets.client_id,
        "type": "POINTS",
        "id": "P1",
        "msg_id": "m1",
        "msg": "{}",
        "version": version,
        "kdt_id": kdt_id,
        "test": test,
    }
    raw = json.dumps(body).encode()
    sign = hashlib.md5(secrets.client_id.encode() + raw + secrets.client_secret.encode()).hexdigest()

    reply = pipeline.handle(post("/v1/hooks/youzan/acme", raw, {"event-sign": sign}))

    assert reply.status < 500, reply.body
    assert in_progress_keys(pipeline) == []
