"""Shopify: HMAC over the raw body (current and previous secret), topics → canonical events."""

from __future__ import annotations

import pytest
from huiliu.connectors.base import TenantContext
from huiliu.connectors.shopify import ShopifyConnector
from huiliu.errors import Unauthorized
from huiliu.tenants import ShopifySecrets

from tests.unit.connectors.connector_helpers import NOW, sample, shopify_request

connector = ShopifyConnector()


def secret(tenant: TenantContext) -> str:
    assert tenant.secrets.shopify
    return tenant.secrets.shopify.secret


def test_given_a_customers_create_when_handled_then_identify_with_customer_id_email_and_phone(
    tenant: TenantContext,
) -> None:
    request = shopify_request(sample("shopify", "customers_create.json"), secret(tenant), "customers/create")

    [event] = connector.handle(request, tenant, NOW).events

    assert event.type == "identify"
    assert event.identifier("shopify_customer_id") == "7008123456789"
    assert event.identifier("email") == "ada@example.com"
    assert event.identifier("phone") == "+14155550123"
    assert event.traits["first_name"] == "Ada"
    assert event.message_id.startswith("shp-")  # a digest of the signed body, not the unsigned id
    assert event.context["shopify"]["webhook_id"] == "wh-1"
    assert event.source.account == "acme.myshopify.com"


def test_given_an_orders_create_when_handled_then_order_completed_with_revenue_and_products(
    tenant: TenantContext,
) -> None:
    request = shopify_request(sample("shopify", "orders_create.json"), secret(tenant), "orders/create")

    [event] = connector.handle(request, tenant, NOW).events

    assert event.event == "Order Completed"
    assert event.properties["order_id"] == "5500112233"
    assert event.properties["revenue"] == 59.9
    assert event.properties["currency"] == "USD"
    assert event.properties["products"][0] == {
        "product_id": "632910392",
        "variant_id": "808950810",
        "sku": "IPOD-NANO",
        "name": "iPod Nano",
        "price": 54.9,
        "quantity": 1,
    }


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        ("orders/paid", "Order Paid"),
        ("orders/fulfilled", "Order Fulfilled"),
        ("orders/cancelled", "Order Cancelled"),
    ],
)
def test_given_each_order_topic_when_handled_then_its_event_name(
    tenant: TenantContext, topic: str, name: str
) -> None:
    request = shopify_request(sample("shopify", "orders_paid.json"), secret(tenant), topic)

    assert connector.handle(request, tenant, NOW).events[0].event == name


def test_given_a_refund_when_handled_then_order_refunded_with_refunded_amount(tenant: TenantContext) -> None:
    request = shopify_request(sample("shopify", "refunds_create.json"), secret(tenant), "refunds/create")

    [event] = connector.handle(request, tenant, NOW).events

    assert event.event == "Order Refunded"
    assert event.properties["revenue"] == 54.9
    assert event.properties["order_id"] == "5500112233"


def test_given_a_body_signed_with_the_previous_secret_when_handled_then_accepted(
    tenant: TenantContext,
) -> None:
    rotated = tenant.secrets.model_copy(
        update={"shopify": ShopifySecrets(secret="shpss_new", previous_secret=secret(tenant))}
    )
    rotated_tenant = TenantContext(tenant.tenant_id, tenant.settings, rotated)
    request = shopify_request(sample("shopify", "orders_create.json"), secret(tenant), "orders/create")

    assert len(connector.handle(request, rotated_tenant, NOW).events) == 1


def test_given_a_tampered_body_when_handled_then_unauthorized(tenant: TenantContext) -> None:
    good = shopify_request(sample("shopify", "orders_create.json"), secret(tenant), "orders/create")
    tampered = shopify_request(
        sample("shopify", "orders_create.json").replace(b"59.90", b"0.01"),
        secret(tenant),
        "orders/create",
        signature=good.headers["x-shopify-hmac-sha256"],
    )

    with pytest.raises(Unauthorized) as caught:
        connector.handle(tampered, tenant, NOW)
    assert caught.value.reason == "bad_signature"
