"""Signed JSON: Standard Webhooks signatures (checked against the reference package), schema."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from huiliu.connectors.base import TenantContext
from huiliu.connectors.signed_json import SignedJsonConnector, json_schemas, sign
from huiliu.errors import BadRequest, Unauthorized

from tests.unit.connectors.connector_helpers import NOW, sample, signed_json_request

connector = SignedJsonConnector()


def secret(tenant: TenantContext) -> str:
    assert tenant.secrets.signed_json
    return tenant.secrets.signed_json.secret


def test_given_our_signature_when_verified_by_the_reference_package_then_it_passes(
    tenant: TenantContext,
) -> None:
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    body = sample("signed-json", "order.json")
    ts = str(int(datetime.now(UTC).timestamp()))
    headers = {"webhook-id": "msg_9", "webhook-timestamp": ts, "webhook-signature": ""}
    headers["webhook-signature"] = "v1," + sign(secret(tenant), "msg_9", ts, body)

    assert Webhook(secret(tenant)).verify(body, headers) == json.loads(body)


def test_given_a_signed_customer_when_handled_then_identify_with_normalised_identifiers(
    tenant: TenantContext,
) -> None:
    request = signed_json_request(sample("signed-json", "customer.json"), secret(tenant))

    [event] = connector.handle(request, tenant, NOW).events

    assert event.type == "identify"
    assert event.identifier("member_id") == "POS-88"
    assert event.identifier("phone") == "+8613800138000"
    assert event.message_id == "msg_1"
    assert event.traits["store"] == "Shanghai Jing'an"


def test_given_a_signed_order_when_handled_then_an_order_event(tenant: TenantContext) -> None:
    request = signed_json_request(sample("signed-json", "order.json"), secret(tenant))

    [event] = connector.handle(request, tenant, NOW).events

    assert event.event == "Order Completed"
    assert event.properties["revenue"] == 128.5
    assert event.properties["products"][0]["sku"] == "SKU-TEA-250"


def test_given_a_batch_when_handled_then_one_event_per_item_with_distinct_ids(tenant: TenantContext) -> None:
    items = [json.loads(sample("signed-json", n)) for n in ("customer.json", "order.json", "event.json")]
    request = signed_json_request(json.dumps({"batch": items}).encode(), secret(tenant), webhook_id="msg_b")

    events = connector.handle(request, tenant, NOW).events

    assert [e.message_id for e in events] == ["msg_b:0", "msg_b:1", "msg_b:2"]


def test_given_a_timestamp_six_minutes_old_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    request = signed_json_request(
        sample("signed-json", "event.json"), secret(tenant), at=NOW - timedelta(minutes=6)
    )

    with pytest.raises(Unauthorized) as caught:
        connector.handle(request, tenant, NOW)
    assert caught.value.reason == "stale_timestamp"


def test_given_a_timestamp_six_minutes_ahead_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    request = signed_json_request(
        sample("signed-json", "event.json"), secret(tenant), at=NOW + timedelta(minutes=6)
    )

    with pytest.raises(Unauthorized):
        connector.handle(request, tenant, NOW)


def test_given_a_body_violating_the_schema_when_handled_then_schema_violation(tenant: TenantContext) -> None:
    body = json.dumps({"type": "order", "person": {"email": "a@example.com"}}).encode()

    with pytest.raises(BadRequest) as caught:
        connector.handle(signed_json_request(body, secret(tenant)), tenant, NOW)
    assert caught.value.reason == "schema_violation"


def test_given_the_published_schema_files_when_compared_with_the_models_then_they_are_current() -> None:
    from huiliu.connectors.signed_json import SCHEMA_DIR

    for name, schema in json_schemas().items():
        assert json.loads((SCHEMA_DIR / name).read_text()) == schema, f"regenerate {name}"
