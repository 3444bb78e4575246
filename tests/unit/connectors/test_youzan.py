"""Youzan push: signature, msg decoding, trade and customer translation, heartbeat."""

from __future__ import annotations

import json

import pytest
from huiliu.connectors.base import TenantContext
from huiliu.connectors.youzan import YouzanConnector
from huiliu.errors import BadRequest, Unauthorized

from tests.unit.connectors.connector_helpers import NOW, sample_json, youzan_request

connector = YouzanConnector()


def test_given_a_signed_trade_paid_push_when_handled_then_an_order_paid_event_with_products(
    tenant: TenantContext,
) -> None:
    result = connector.handle(
        youzan_request(tenant, sample_json("youzan", "trade_TradePaid.json")), tenant, NOW
    )

    [event] = result.events
    assert event.event == "Order Paid"
    assert event.properties["order_id"] == "E20260102030405000001"
    assert event.properties["revenue"] == 128.5
    assert event.properties["currency"] == "CNY"
    assert [p["sku"] for p in event.properties["products"]] == ["SKU-TEA-250", "SKU-CUP"]
    assert event.identifier("phone") == "+8613800138000"
    assert event.identifier("youzan_open_id") == "yzOpen_8f3a2b"
    assert event.timestamp.isoformat() == "2026-01-02T11:01:30+08:00"
    assert json.loads(result.reply.body) == {"code": 0, "msg": "success"}


def test_given_a_trade_success_push_when_handled_then_order_completed_with_version_key(
    tenant: TenantContext,
) -> None:
    result = connector.handle(
        youzan_request(tenant, sample_json("youzan", "trade_TradeSuccess.json")), tenant, NOW
    )

    assert result.events[0].event == "Order Completed"
    assert result.version == 5
    assert result.version_key == "acme#youzan#version#trade_TradeSuccess#E20260102030405000001"


def test_given_a_refund_success_push_when_handled_then_order_refunded_with_refund_amount(
    tenant: TenantContext,
) -> None:
    body = sample_json("youzan", "trade_refund_RefundSuccess.json")

    [event] = connector.handle(youzan_request(tenant, body), tenant, NOW).events

    assert event.event == "Order Refunded"
    assert event.properties["revenue"] == 30.0


def test_given_a_customer_event_when_handled_then_identify_with_phone_open_id_and_traits(
    tenant: TenantContext,
) -> None:
    body = sample_json("youzan", "SCRM_CUSTOMER_EVENT.json")

    [event] = connector.handle(youzan_request(tenant, body), tenant, NOW).events

    assert event.type == "identify"
    assert event.identifier("phone") == "+8613800138000"
    assert event.identifier("youzan_open_id") == "yzOpen_8f3a2b"
    assert event.traits["name"] == "李雷"


def test_given_a_member_card_push_when_handled_then_identify_with_member_id(tenant: TenantContext) -> None:
    body = sample_json("youzan", "SCRM_CUSTOMER_CARD.json")

    [event] = connector.handle(youzan_request(tenant, body), tenant, NOW).events

    assert event.identifier("member_id") == "VIP000123"
    assert event.traits["youzan_member_card"]["card_alias"] == "gold"


def test_given_a_points_push_when_handled_then_identify_with_the_total_and_a_points_changed_track(
    tenant: TenantContext,
) -> None:
    identify, event = connector.handle(
        youzan_request(tenant, sample_json("youzan", "POINTS.json")), tenant, NOW
    ).events

    assert identify.type == "identify"
    assert identify.traits == {"youzan_points": 1350}
    assert identify.identifier("phone") == "+8613800138000"
    assert event.event == "Points Changed"
    assert event.properties["total"] == 1350
    assert identify.message_id != event.message_id


def test_given_a_test_push_when_handled_then_acknowledged_without_events(tenant: TenantContext) -> None:
    result = connector.handle(youzan_request(tenant, sample_json("youzan", "test_push.json")), tenant, NOW)

    assert result.ingest is False
    assert result.events == []
    assert json.loads(result.reply.body)["code"] == 0


def test_given_a_wrong_event_sign_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    request = youzan_request(tenant, sample_json("youzan", "POINTS.json"), sign="0" * 32)

    with pytest.raises(Unauthorized) as caught:
        connector.handle(request, tenant, NOW)
    assert caught.value.reason == "bad_signature"


def test_given_a_msg_that_is_not_url_encoded_json_when_handled_then_bad_request(
    tenant: TenantContext,
) -> None:
    body = {**sample_json("youzan", "POINTS.json"), "msg": "%7Bnot json"}

    with pytest.raises(BadRequest) as caught:
        connector.handle(youzan_request(tenant, body), tenant, NOW)
    assert caught.value.reason == "invalid_msg"


def test_given_a_plain_json_object_msg_when_handled_then_it_is_accepted(tenant: TenantContext) -> None:
    body = {**sample_json("youzan", "POINTS.json"), "msg": {"mobile": "13800138000", "amount": 5, "total": 6}}

    _, event = connector.handle(youzan_request(tenant, body), tenant, NOW).events

    assert event.properties["amount"] == 5


def test_given_an_unknown_type_when_handled_then_a_generic_event_is_kept(tenant: TenantContext) -> None:
    body = {**sample_json("youzan", "POINTS.json"), "type": "COUPON_CUSTOMER_PROMOTION"}

    [event] = connector.handle(youzan_request(tenant, body), tenant, NOW).events

    assert event.event == "Youzan COUPON_CUSTOMER_PROMOTION"
