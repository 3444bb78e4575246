"""WeChat: URL check, plain and safe mode (checked against wechatpy), event translation."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from huiliu.connectors.base import TenantContext
from huiliu.connectors.wechat import WeChatConnector, sha1_signature
from huiliu.errors import BadRequest, Unauthorized

from tests.unit.connectors.connector_helpers import (
    NOW,
    make_request,
    make_tenant,
    sample,
    wechat_aes_request,
    wechat_plain_request,
)

connector = WeChatConnector()


@pytest.fixture
def tenant() -> TenantContext:
    """An account in compatible mode: plain and encrypted POSTs are both accepted."""
    return compatible_tenant()


def compatible_tenant() -> TenantContext:
    base = make_tenant()
    assert base.secrets.wechat
    wechat = base.secrets.wechat.model_copy(update={"mode": "compatible"})
    return replace(base, secrets=base.secrets.model_copy(update={"wechat": wechat}))


def test_given_a_valid_url_check_when_handled_then_echostr_is_returned(tenant: TenantContext) -> None:
    assert tenant.secrets.wechat
    ts = str(int(NOW.timestamp()))
    signature = hashlib.sha1("".join(sorted([tenant.secrets.wechat.token, ts, "abc"])).encode()).hexdigest()
    request = make_request(
        b"", method="GET", query={"signature": signature, "timestamp": ts, "nonce": "abc", "echostr": "e-42"}
    )

    result = connector.handle(request, tenant, NOW)

    assert result.reply.body == "e-42"
    assert result.ingest is False


def test_given_a_url_check_with_a_bad_signature_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    ts = str(int(NOW.timestamp()))
    request = make_request(
        b"", method="GET", query={"signature": "bad", "timestamp": ts, "nonce": "n", "echostr": "e"}
    )

    with pytest.raises(Unauthorized):
        connector.handle(request, tenant, NOW)


def test_given_our_signature_when_compared_with_wechatpy_then_they_agree(tenant: TenantContext) -> None:
    from wechatpy.utils import WeChatSigner

    signer = WeChatSigner()
    for part in ("tok", "1700000000", "nonce"):
        signer.add_data(part)

    assert sha1_signature("tok", "1700000000", "nonce") == signer.signature


def test_given_a_plain_subscribe_when_handled_then_subscribed_event_keyed_by_openid(
    tenant: TenantContext,
) -> None:
    result = connector.handle(wechat_plain_request(tenant, sample("wechat", "subscribe.xml")), tenant, NOW)

    [event] = result.events
    assert event.event == "WeChat Subscribed"
    assert event.identifier("wechat_openid") == "oAbC123_wechat_openid"
    assert event.properties["scene"] == "spring_fair"
    assert event.message_id == "oAbC123_wechat_openid:1767323045:subscribe"
    assert result.reply.body == "success"


def test_given_an_unsubscribe_when_handled_then_wechat_consent_is_withdrawn(tenant: TenantContext) -> None:
    [event] = connector.handle(
        wechat_plain_request(tenant, sample("wechat", "unsubscribe.xml")), tenant, NOW
    ).events

    assert event.event == "WeChat Unsubscribed"
    assert event.traits == {"consent": {"wechat": False}}
    assert event.context["consent"] == {"wechat": False}


@pytest.mark.parametrize(
    ("name", "event_name", "prop", "value"),
    [
        ("scan.xml", "WeChat QR Scanned", "scene", "spring_fair"),
        ("click.xml", "WeChat Menu Clicked", "key", "MENU_COUPONS"),
        ("view.xml", "WeChat Menu Link Opened", "url", "https://shop.example.cn/new"),
        ("text.xml", "WeChat Message Received", "content", "你好"),
    ],
)
def test_given_each_sample_push_when_handled_then_its_event_and_property(
    tenant: TenantContext, name: str, event_name: str, prop: str, value: str
) -> None:
    [event] = connector.handle(wechat_plain_request(tenant, sample("wechat", name)), tenant, NOW).events

    assert event.event == event_name
    assert event.properties[prop] == value


def test_given_a_message_with_msgid_when_handled_then_msgid_is_the_dedupe_id(tenant: TenantContext) -> None:
    [event] = connector.handle(wechat_plain_request(tenant, sample("wechat", "text.xml")), tenant, NOW).events

    assert event.message_id == "24432109876543210"


def test_given_a_safe_mode_push_encrypted_by_wechatpy_when_handled_then_decrypted_and_translated(
    tenant: TenantContext,
) -> None:
    request = wechat_aes_request(tenant, sample("wechat", "subscribe.xml"))

    [event] = connector.handle(request, tenant, NOW).events

    assert event.event == "WeChat Subscribed"
    assert event.identifier("wechat_openid") == "oAbC123_wechat_openid"


def test_given_a_safe_mode_push_for_another_appid_when_handled_then_unauthorized(
    tenant: TenantContext,
) -> None:
    request = wechat_aes_request(tenant, sample("wechat", "click.xml"), app_id="wxdeadbeefdeadbeef")

    with pytest.raises(Unauthorized) as caught:
        connector.handle(request, tenant, NOW)
    assert caught.value.reason == "bad_app_id"


def test_given_a_tampered_safe_mode_signature_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    request = wechat_aes_request(tenant, sample("wechat", "click.xml"))
    request.query["msg_signature"] = "0" * 40

    with pytest.raises(Unauthorized):
        connector.handle(request, tenant, NOW)


def test_given_a_stale_timestamp_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    request = wechat_plain_request(
        tenant, sample("wechat", "click.xml"), timestamp=int(NOW.timestamp()) - 301
    )

    with pytest.raises(Unauthorized) as caught:
        connector.handle(request, tenant, NOW)
    assert caught.value.reason == "stale_timestamp"


def test_given_an_entity_expansion_bomb_when_handled_then_bad_request(tenant: TenantContext) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<xml><FromUserName>&b;</FromUserName></xml>"
    )

    with pytest.raises(BadRequest) as caught:
        connector.handle(wechat_plain_request(tenant, bomb), tenant, NOW)
    assert caught.value.reason == "invalid_xml"


def test_given_an_external_entity_when_handled_then_bad_request(tenant: TenantContext) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><A>&x;</A></xml>'
    )

    with pytest.raises(BadRequest):
        connector.handle(wechat_plain_request(tenant, xxe), tenant, NOW)


def test_given_a_json_content_type_when_handled_then_unsupported_media_type(tenant: TenantContext) -> None:
    request = wechat_plain_request(tenant, sample("wechat", "click.xml"))
    request.headers["content-type"] = "application/json"

    with pytest.raises(BadRequest.__mro__[1]) as caught:
        connector.handle(request, tenant, NOW)
    assert caught.value.status == 415
