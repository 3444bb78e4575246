"""Input bounds (issue 8, item 1): what a connector accepts, every later step can carry.

Each test fails on the code before the bounds: deep JSON got a 503 after the raw request was
archived, lone surrogates and 39-digit integers got a 200 and then a dead letter, ``1e400`` became
``null`` (revenue 0), a batch's shared context was merged after the per-event size check, and sizes
were counted in characters (or in ``\\uXXXX`` escapes) instead of UTF-8 bytes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from huiliu.bus import EventBridgePublisher, OutgoingEvent
from huiliu.clock import ManualClock
from huiliu.connectors.base import HttpRequest, TenantContext
from huiliu.connectors.limits import MAX_DEPTH, MAX_EVENT_BYTES, check_value
from huiliu.errors import BadRequest
from huiliu.ingest.fakes import StaticDirectory, memory_pipeline
from huiliu.ingest.pipeline import IngestPipeline

from tests.unit.connectors.connector_helpers import NOW, make_request, make_tenant, shopify_request


@pytest.fixture
def tenant() -> TenantContext:
    return make_tenant()


@pytest.fixture
def pipeline(tenant: TenantContext) -> IngestPipeline:
    return memory_pipeline(
        StaticDirectory({"acme": (tenant.settings, tenant.secrets)}), clock=ManualClock(NOW).now
    )


def segment(tenant: TenantContext, body: dict[str, Any] | bytes, call: str = "track") -> HttpRequest:
    assert tenant.secrets.segment
    auth = base64.b64encode(f"{tenant.secrets.segment.write_key}:".encode()).decode()
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return make_request(raw, path=f"/v1/{call}", headers={"Authorization": f"Basic {auth}"})


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def track(**extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": "m-1", **extra}


def published(pipeline: IngestPipeline) -> list[dict[str, Any]]:
    return [e.detail for e in pipeline.publisher.events]  # type: ignore[attr-defined]


def assert_rejected(pipeline: IngestPipeline, reply: Any, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    body = json.loads(reply.body)
    assert body["code"] == code
    assert published(pipeline) == []
    assert pipeline.archive.objects == {}  # type: ignore[attr-defined]  # nothing archived either
    return body


# -- nesting ------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1000])
def test_json_nested_beyond_the_bound_is_a_400_naming_the_field(
    pipeline: IngestPipeline, tenant: TenantContext, depth: int
) -> None:
    reply = pipeline.handle(segment(tenant, track(properties=nested(depth))))
    body = assert_rejected(pipeline, reply, 400, "too_deep")
    assert "properties" in body["message"]


def test_json_nested_up_to_the_bound_is_accepted(pipeline: IngestPipeline, tenant: TenantContext) -> None:
    reply = pipeline.handle(segment(tenant, track(properties=nested(MAX_DEPTH))))
    assert reply.status == 200, reply.body
    assert len(published(pipeline)) == 1


def test_the_depth_walk_has_no_recursion_limit() -> None:
    deep: Any = 1
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(BadRequest) as caught:
        check_value(deep, "properties")
    assert caught.value.reason == "too_deep"


# -- strings --------------------------------------------------------------------------------------
def test_lone_surrogates_become_replacement_characters(
    pipeline: IngestPipeline, tenant: TenantContext
) -> None:
    raw = b'{"userId":"u-\\ud800","event":"Viewed","messageId":"m-1",'
    raw += b'"properties":{"k\\udc00":"a\\ud83d\\ude00b\\ud83d"},"traits":{"name":"\\udfff"}}'
    reply = pipeline.handle(segment(tenant, raw))
    assert reply.status == 200, reply.body
    (detail,) = published(pipeline)
    assert detail["properties"] == {"k\ufffd": "a\U0001f600b\ufffd"}  # a valid pair stays an emoji
    assert detail["traits"] == {"name": "\ufffd"}
    json.dumps(detail, ensure_ascii=False).encode("utf-8")  # publishable and storable


# -- numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw_number", "code"),
    [
        (b"1e400", "invalid_number"),  # overflows a double: was inf, published as null
        (b"-1e400", "invalid_number"),
        (b"100000000000000000000000000000000000000", "invalid_number"),  # 39 digits: DynamoDB refuses
        (b"1e200", "invalid_number"),  # beyond DynamoDB's 9.99E+125
        (b"1e-200", "invalid_number"),  # below DynamoDB's 1E-130
    ],
)
def test_numbers_dynamodb_cannot_hold_are_a_400(
    pipeline: IngestPipeline, tenant: TenantContext, raw_number: bytes, code: str
) -> None:
    raw = b'{"userId":"u-1","event":"Order Completed","properties":{"revenue":' + raw_number + b"}}"
    assert_rejected(pipeline, pipeline.handle(segment(tenant, raw)), 400, code)


def test_numbers_within_dynamodb_range_are_accepted(pipeline: IngestPipeline, tenant: TenantContext) -> None:
    props = {"big": 10**38 - 1, "small": -(10**38 - 1), "f": 9.9e125, "tiny": 1e-130, "zero": 0.0}
    assert pipeline.handle(segment(tenant, track(properties=props))).status == 200
    assert published(pipeline)[0]["properties"] == props


def test_a_shopify_amount_beyond_a_double_is_a_400_not_a_revenue_of_zero(
    pipeline: IngestPipeline, tenant: TenantContext
) -> None:
    assert tenant.secrets.shopify
    order = {"id": 1, "total_price": "1e400", "email": "a@example.com", "line_items": []}
    request = shopify_request(json.dumps(order).encode(), tenant.secrets.shopify.secret, "orders/create")
    assert_rejected(pipeline, pipeline.handle(request), 400, "invalid_amount")


def test_a_shopify_refund_whose_sum_overflows_is_a_400(
    pipeline: IngestPipeline, tenant: TenantContext
) -> None:
    assert tenant.secrets.shopify
    refund = {"id": 9, "order_id": 1, "transactions": [{"amount": "1.7e308"}, {"amount": "1.7e308"}]}
    request = shopify_request(json.dumps(refund).encode(), tenant.secrets.shopify.secret, "refunds/create")
    assert_rejected(pipeline, pipeline.handle(request), 400, "invalid_number")


# -- sizes ------------------------------------------------------------------------------------------
def test_a_batch_context_is_counted_with_each_message(
    pipeline: IngestPipeline, tenant: TenantContext
) -> None:
    """One tiny message plus a 100 KB shared context used to become a 100 KB bus event."""
    body = {"batch": [track()], "context": {"blob": "x" * 100_000}}
    reply = pipeline.handle(segment(tenant, body, call="batch"))
    body_out = assert_rejected(pipeline, reply, 413, "event_too_large")
    assert "batch[0]" in body_out["message"]


def test_utf8_bytes_not_escapes_are_counted(pipeline: IngestPipeline, tenant: TenantContext) -> None:
    """7,000 Chinese characters are 21 KB of UTF-8 (under Segment's 32 KB), not 42 KB of \\uXXXX."""
    message = track(properties={"note": "汉" * 7000})
    body = {"batch": [{**message, "messageId": "a"}, {**message, "messageId": "b"}]}
    reply = pipeline.handle(segment(tenant, body, call="batch"))
    assert reply.status == 200, reply.body
    assert len(published(pipeline)) == 2


def test_a_canonical_event_over_the_bound_is_a_413(pipeline: IngestPipeline, tenant: TenantContext) -> None:
    """A generic Shopify topic carries its payload: 200 KB of it cannot cross the bus."""
    assert tenant.secrets.shopify
    payload = {"id": 5, "body_html": "汉" * (MAX_EVENT_BYTES // 3 + 10)}
    request = shopify_request(json.dumps(payload).encode(), tenant.secrets.shopify.secret, "products/update")
    body = assert_rejected(pipeline, pipeline.handle(request), 413, "event_too_large")
    assert "UTF-8" in body["message"]


class _RecordingEvents:
    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests.append(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


def test_put_events_requests_stay_under_256_kb_of_utf8() -> None:
    client = _RecordingEvents()
    events = [OutgoingEvent("huiliu.ingest", "event.ingested", {"t": "汉" * 20_000}) for _ in range(10)]
    EventBridgePublisher("bus", client=client).publish(events)
    assert sum(len(r) for r in client.requests) == 10
    for request in client.requests:
        size = sum(len(e["Detail"].encode()) + len(e["DetailType"]) + len(e["Source"]) for e in request)
        assert size <= 256 * 1024


def test_youzan_msg_json_has_the_same_bounds(pipeline: IngestPipeline, tenant: TenantContext) -> None:
    """``msg`` is JSON inside a field: its surrogates are replaced and ``1e400`` refused too."""
    from urllib.parse import quote

    from tests.unit.connectors.connector_helpers import youzan_request

    push = {"type": "FUZZ", "id": "1", "msg_id": "m-1", "msg": quote('{"note":"a\\ud800"}')}
    assert pipeline.handle(youzan_request(tenant, push)).status == 200
    assert published(pipeline)[0]["properties"]["msg"] == {"note": "a\ufffd"}
    push = {"type": "FUZZ", "id": "2", "msg_id": "m-2", "msg": quote('{"n":1e400}')}
    reply = pipeline.handle(youzan_request(tenant, push))
    assert (reply.status, json.loads(reply.body)["code"]) == (400, "invalid_number")
