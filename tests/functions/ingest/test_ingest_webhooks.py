"""Every webhook connector through the ingest Lambda with moto: replies, bus, archive, dedupe, 404s."""

from __future__ import annotations

import hashlib
import json
import time
from types import ModuleType

import pytest

from tests.functions.ingest.ingest_helpers import LambdaContext, Stack, http_event
from tests.unit.connectors.connector_helpers import sample, sample_json


def youzan_event(stack: Stack, body: dict) -> dict:
    secrets = stack.secrets.youzan
    assert secrets
    raw = json.dumps({**body, "client_id": secrets.client_id}).encode()
    sign = hashlib.md5(secrets.client_id.encode() + raw + secrets.client_secret.encode()).hexdigest()
    return http_event("/v1/hooks/youzan/acme", raw, headers={"event-sign": sign})


def wechat_safe_event(stack: Stack, xml: bytes) -> dict:
    """A safe-mode (encrypted) push, as wechatpy produces it (the default mode with an AES key)."""
    from wechatpy.crypto import WeChatCrypto

    secrets = stack.secrets.wechat
    assert secrets
    assert secrets.encoding_aes_key
    ts, nonce = str(int(time.time())), "n2"
    envelope = WeChatCrypto(secrets.token, secrets.encoding_aes_key, secrets.app_id).encrypt_message(
        xml.decode(), nonce, ts
    )
    msg_signature = envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "msg_signature": msg_signature}
    return http_event("/v1/hooks/wechat/acme", envelope, query=query, headers={"content-type": "text/xml"})


def wechat_event(stack: Stack, xml: bytes, method: str = "POST", echostr: str | None = None) -> dict:
    secrets = stack.secrets.wechat
    assert secrets
    ts, nonce = str(int(time.time())), "n1"
    query = {"timestamp": ts, "nonce": nonce}
    query["signature"] = hashlib.sha1("".join(sorted([secrets.token, ts, nonce])).encode()).hexdigest()
    if echostr:
        query["echostr"] = echostr
    return http_event(
        "/v1/hooks/wechat/acme", xml, method=method, query=query, headers={"content-type": "text/xml"}
    )


def test_given_a_youzan_trade_push_when_delivered_twice_then_applied_once_with_two_success_replies(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    import huiliu.clock
    from huiliu.clock import ManualClock

    # both deliveries in the same second (the archive ref carries the receive second): a frozen clock,
    # not a race against the wall clock on a loaded machine
    monkeypatch.setattr(huiliu.clock, "_default", ManualClock(datetime.now(UTC)))
    event = youzan_event(stack, sample_json("youzan", "trade_TradePaid.json"))

    first = ingest_app.handler(event, lambda_context)
    second = ingest_app.handler(event, lambda_context)

    assert json.loads(first["body"]) == json.loads(second["body"]) == {"code": 0, "msg": "success"}
    queued = stack.bus_events()
    assert {e["detail"]["event"] for e in queued} == {"Order Paid"}
    assert len(stack.raw_keys()) == 2  # both deliveries are archived (the same ref: replay applies it once)
    assert len(set(stack.raw_keys())) == 1
    assert stack.identity_outcomes(queued) == ["processed", "duplicate"]


def test_given_a_wechat_url_check_when_requested_then_echostr_is_echoed_as_text(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    response = ingest_app.handler(wechat_event(stack, b"", method="GET", echostr="echo-1"), lambda_context)

    assert response["statusCode"] == 200
    assert response["body"] == "echo-1"
    assert response["headers"]["content-type"] == "text/plain"


def test_given_a_wechat_unsubscribe_when_posted_then_success_and_consent_event_on_the_bus(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    response = ingest_app.handler(
        wechat_safe_event(stack, sample("wechat", "unsubscribe.xml")), lambda_context
    )

    assert response["body"] == "success"
    [published] = stack.bus_events()
    assert published["detail"]["traits"] == {"consent": {"wechat": False}}


def test_given_a_shopify_webhook_retried_with_the_same_webhook_id_then_applied_once(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    import base64
    import hmac

    assert stack.secrets.shopify
    body = sample("shopify", "orders_create.json")
    mac = base64.b64encode(
        hmac.new(stack.secrets.shopify.secret.encode(), body, hashlib.sha256).digest()
    ).decode()
    headers = {
        "x-shopify-hmac-sha256": mac,
        "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": "w-7",
    }
    event = http_event("/v1/hooks/shopify/acme", body, headers=headers)

    statuses = [ingest_app.handler(event, lambda_context)["statusCode"] for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert stack.identity_outcomes() == ["processed", "duplicate", "duplicate"]


def test_given_a_signed_json_order_when_posted_then_published(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    from standardwebhooks.webhooks import Webhook

    assert stack.secrets.signed_json
    body = sample("signed-json", "order.json")
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    signature = Webhook(stack.secrets.signed_json.secret).sign("msg_77", now, body.decode())
    headers = {
        "webhook-id": "msg_77",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }

    response = ingest_app.handler(
        http_event("/v1/hooks/signed-json/acme", body, headers=headers), lambda_context
    )

    assert response["statusCode"] == 200
    assert stack.bus_events()[0]["detail"]["properties"]["order_id"] == "POS-20260102-0001"


def test_given_an_unknown_tenant_or_connector_when_posted_then_the_404_bodies_are_identical(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    unknown_tenant = ingest_app.handler(http_event("/v1/hooks/youzan/nobody", b"{}"), lambda_context)
    unknown_connector = ingest_app.handler(http_event("/v1/hooks/mailchimp/acme", b"{}"), lambda_context)
    unknown_route = ingest_app.handler(http_event("/v2/whatever", b"{}"), lambda_context)

    assert (
        unknown_tenant["statusCode"] == unknown_connector["statusCode"] == unknown_route["statusCode"] == 404
    )
    assert unknown_tenant["body"] == unknown_connector["body"] == unknown_route["body"]


def test_given_a_bad_signature_when_posted_then_the_unknown_tenant_404_nothing_published_or_archived(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_event("/v1/hooks/youzan/acme", json.dumps(sample_json("youzan", "POINTS.json")))
    event["headers"]["event-sign"] = "0" * 32
    unknown = http_event("/v1/hooks/youzan/ghost", json.dumps(sample_json("youzan", "POINTS.json")))

    response = ingest_app.handler(event, lambda_context)

    # an authentication failure must not tell that the tenant exists
    assert response["statusCode"] == 404
    assert response["body"] == ingest_app.handler(unknown, lambda_context)["body"]
    assert stack.bus_events() == []
    assert stack.raw_keys() == []


def test_given_an_oversized_body_when_posted_then_413(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    response = ingest_app.handler(http_event("/v1/hooks/youzan/acme", b"x" * (600 * 1024)), lambda_context)

    assert response["statusCode"] == 413


def test_given_a_plain_text_body_not_base64_encoded_when_posted_then_it_is_read_as_is(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    assert stack.secrets.segment
    body = json.dumps({"writeKey": stack.secrets.segment.write_key, "userId": "u", "event": "E"})
    event = http_event("/v1/track", b"")
    event["body"], event["isBase64Encoded"] = body, False

    assert ingest_app.handler(event, lambda_context)["statusCode"] == 200


def test_given_no_lambda_context_when_invoked_by_a_local_runtime_then_the_handler_still_answers(
    stack: Stack, ingest_app: ModuleType
) -> None:
    response = ingest_app.handler(http_event("/v1/hooks/nosuch/acme", b"{}"), None)

    assert response["statusCode"] == 404
