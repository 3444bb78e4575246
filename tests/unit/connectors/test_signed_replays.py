"""Replays of signed bodies (issue 8, item 2): dedupe on what the signature covers.

Shopify's HMAC covers the body, not ``X-Shopify-Webhook-Id``; Youzan's opt-in body ``sign`` covers
``msg``, not ``msg_id``. Before, a captured body re-sent under a new id was a second event (a
second order). Standard Webhooks (``webhook-id`` is signed), Youzan ``Event-Sign`` (the whole body,
``msg_id`` included) and WeChat safe mode (``MsgId`` inside the signed ciphertext) already dedupe
on signed ids; WeChat plain mode binds (timestamp, nonce) to the body (test_hardening).
"""

from __future__ import annotations

import json

from huiliu.clock import ManualClock
from huiliu.ingest.fakes import StaticDirectory, memory_pipeline
from huiliu.ingest.pipeline import IngestPipeline

from tests.unit.connectors.connector_helpers import (
    NOW,
    make_request,
    make_tenant,
    sample,
    sample_json,
    shopify_request,
)
from tests.unit.connectors.test_hardening import body_signed_youzan, with_secrets


def _pipeline(tenant) -> IngestPipeline:  # type: ignore[no-untyped-def]
    return memory_pipeline(
        StaticDirectory({"acme": (tenant.settings, tenant.secrets)}), clock=ManualClock(NOW).now
    )


def test_a_shopify_body_replayed_under_new_webhook_ids_is_one_order() -> None:
    tenant = make_tenant()
    assert tenant.secrets.shopify
    pipeline = _pipeline(tenant)
    body = sample("shopify", "orders_create.json")
    statuses = [
        pipeline.handle(
            shopify_request(body, tenant.secrets.shopify.secret, "orders/create", webhook_id=w)
        ).status
        for w in ("w-1", "forged-2", "forged-3")
    ]
    assert statuses == [200, 200, 200]  # a replay gets the success reply (a duplicate), not an error
    assert len(pipeline.publisher.events) == 1  # type: ignore[attr-defined]
    assert pipeline.metrics.counts.get(("duplicates", "shopify", None), 0) == 2  # type: ignore[attr-defined]


def test_a_shopify_body_under_another_topic_is_another_event() -> None:
    """orders/create and orders/paid may carry the same order body: both are kept."""
    tenant = make_tenant()
    assert tenant.secrets.shopify
    pipeline = _pipeline(tenant)
    body = sample("shopify", "orders_create.json")
    for topic in ("orders/create", "orders/paid"):
        assert pipeline.handle(shopify_request(body, tenant.secrets.shopify.secret, topic)).status == 200
    names = [e.detail["event"] for e in pipeline.publisher.events]  # type: ignore[attr-defined]
    assert names == ["Order Completed", "Order Paid"]


def test_a_youzan_body_signed_push_replayed_under_a_new_msg_id_is_one_event() -> None:
    tenant = with_secrets(make_tenant(), "youzan", allow_body_sign=True)
    pipeline = _pipeline(tenant)
    push = sample_json("youzan", "POINTS.json")
    for msg_id in ("m-1", "m-2", "m-3"):
        body = body_signed_youzan(tenant, {**push, "msg_id": msg_id})
        assert pipeline.handle(make_request(body, path="/v1/hooks/youzan/acme")).status == 200
    published = pipeline.publisher.events  # type: ignore[attr-defined]
    assert len(published) == len({e.detail["message_id"] for e in published}) == 2  # POINTS: identify + track
    assert json.loads(pipeline.handle(make_request(body, path="/v1/hooks/youzan/acme")).body)["code"] == 0
