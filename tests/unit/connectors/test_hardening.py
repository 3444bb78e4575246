"""Review findings: forgery, safe-mode bypass, 503s for bad input, tenant probing, double publishes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from huiliu.bus import MemoryPublisher, OutgoingEvent, PartialPublishFailed
from huiliu.clock import ManualClock
from huiliu.connectors.base import TenantContext
from huiliu.connectors.youzan import YouzanConnector
from huiliu.errors import BadRequest, Unauthorized
from huiliu.ingest.fakes import StaticDirectory, memory_pipeline
from huiliu.ingest.pipeline import NOT_FOUND_BODY, IngestPipeline

from tests.unit.connectors.connector_helpers import (
    NOW,
    make_request,
    make_tenant,
    sample,
    sample_json,
    shopify_request,
    wechat_aes_request,
    wechat_plain_request,
    youzan_request,
)


def pipeline_for(tenant: TenantContext) -> IngestPipeline:
    return memory_pipeline(
        StaticDirectory({"acme": (tenant.settings, tenant.secrets)}), clock=ManualClock(NOW).now
    )


def with_secrets(tenant: TenantContext, connector: str, **changes: Any) -> TenantContext:
    current = getattr(tenant.secrets, connector)
    updated = current.model_copy(update=changes)
    return replace(tenant, secrets=tenant.secrets.model_copy(update={connector: updated}))


def body_signed_youzan(tenant: TenantContext, body: dict[str, Any]) -> bytes:
    """A push carrying only the body ``sign`` (MD5 of client_id + msg + secret), no Event-Sign."""
    secrets = tenant.secrets.youzan
    assert secrets
    sign = hashlib.md5((secrets.client_id + body["msg"] + secrets.client_secret).encode()).hexdigest()
    return json.dumps({**body, "client_id": secrets.client_id, "sign": sign}).encode()


# -- 1. Youzan: the body sign only covers msg ------------------------------------------------------
def test_given_a_youzan_push_without_event_sign_when_handled_then_the_body_sign_is_not_enough() -> None:
    tenant = make_tenant()
    forged = {**sample_json("youzan", "POINTS.json"), "type": "trade_TradePaid", "msg_id": "new-id"}
    request = make_request(body_signed_youzan(tenant, forged), path="/v1/hooks/youzan/acme")

    with pytest.raises(Unauthorized) as caught:
        YouzanConnector().handle(request, tenant, NOW)
    assert caught.value.reason == "missing_signature"


def test_given_a_tenant_that_opted_into_body_sign_when_a_push_has_only_sign_then_it_is_accepted() -> None:
    tenant = with_secrets(make_tenant(), "youzan", allow_body_sign=True)
    request = make_request(
        body_signed_youzan(tenant, sample_json("youzan", "POINTS.json")), path="/v1/hooks/youzan/acme"
    )

    assert YouzanConnector().handle(request, tenant, NOW).events


# -- 2. WeChat: safe mode cannot be bypassed by a plain POST; plain signatures are single-use ----
def test_given_a_safe_mode_account_when_a_plain_post_arrives_then_401_safe_mode_required() -> None:
    tenant = make_tenant()  # has an EncodingAESKey → mode defaults to "safe"
    assert tenant.secrets.wechat
    assert tenant.secrets.wechat.mode == "safe"
    pipeline = pipeline_for(tenant)

    reply = pipeline.handle(wechat_plain_request(tenant, sample("wechat", "click.xml")))
    encrypted = pipeline.handle(wechat_aes_request(tenant, sample("wechat", "click.xml")))

    assert (reply.status, json.loads(reply.body)["code"]) == (401, "safe_mode_required")
    assert encrypted.status == 200


def test_given_a_captured_plain_signature_when_replayed_with_another_body_then_it_is_refused() -> None:
    tenant = with_secrets(make_tenant(), "wechat", mode="compatible")
    pipeline = pipeline_for(tenant)
    original = wechat_plain_request(tenant, sample("wechat", "click.xml"))
    forged = replace(original, body=sample("wechat", "unsubscribe.xml"))

    first = pipeline.handle(original)
    retry = pipeline.handle(original)  # WeChat's own retry: same signature, same body
    replayed = pipeline.handle(forged)

    assert first.status == retry.status == 200
    assert (replayed.status, replayed.body) == (404, NOT_FOUND_BODY)
    assert pipeline.metrics.counts[("rejected", "wechat", "replayed_signature")] == 1
    assert isinstance(pipeline.publisher, MemoryPublisher)
    assert len(pipeline.publisher.events) == 1


def test_given_an_account_without_aes_key_then_its_mode_is_plain() -> None:
    tenant = make_tenant()
    assert tenant.secrets.wechat
    plain = tenant.secrets.wechat.model_copy(update={"encoding_aes_key": None, "mode": None})
    assert type(plain).model_validate(plain.model_dump()).mode == "plain"


# -- 3. Bad input is a 4xx, and a failed version write leaves no lease behind ------------------
def test_given_a_youzan_version_beyond_int64_when_posted_then_400_and_no_key_stays_claimed() -> None:
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    body = {**sample_json("youzan", "POINTS.json"), "version": 10**40}

    reply = pipeline.handle(youzan_request(tenant, body))

    assert (reply.status, json.loads(reply.body)["code"]) == (400, "invalid_version")
    assert pipeline.dedupe.items == {}  # type: ignore[attr-defined]


def test_given_the_version_store_failing_when_posted_then_503_and_the_claims_are_released() -> None:
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)

    def broken(*_: Any) -> bool:
        raise RuntimeError("dynamodb down")

    pipeline.dedupe.advance_version = broken  # type: ignore[method-assign]

    reply = pipeline.handle(youzan_request(tenant, sample_json("youzan", "POINTS.json")))

    assert reply.status == 503
    assert pipeline.dedupe.items == {}  # type: ignore[attr-defined]


def test_given_segment_client_times_at_the_ends_of_the_calendar_when_posted_then_200_at_receive_time() -> (
    None
):
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    assert tenant.secrets.segment
    body = {
        "writeKey": tenant.secrets.segment.write_key,
        "userId": "u1",
        "event": "E",
        "originalTimestamp": "0001-01-01T00:00:00Z",
        "sentAt": "9999-12-31T23:59:59Z",
    }

    reply = pipeline.handle(make_request(json.dumps(body).encode(), path="/v1/track"))

    assert reply.status == 200
    assert isinstance(pipeline.publisher, MemoryPublisher)
    assert pipeline.publisher.events[0].detail["timestamp"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize("test_value", [True, 1, "1", "true"])
def test_given_youzan_test_flags_when_handled_then_each_is_a_heartbeat(test_value: object) -> None:
    tenant = make_tenant()
    body = {**sample_json("youzan", "POINTS.json"), "test": test_value}

    assert YouzanConnector().handle(youzan_request(tenant, body), tenant, NOW).ingest is False


def test_given_a_non_scalar_kdt_id_when_handled_then_400() -> None:
    tenant = make_tenant()
    body = {**sample_json("youzan", "POINTS.json"), "kdt_id": {"nested": 1}}

    with pytest.raises(BadRequest) as caught:
        YouzanConnector().handle(youzan_request(tenant, body), tenant, NOW)
    assert caught.value.reason == "invalid_kdt_id"


# -- 4. No tenant probing before authentication ----------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/v1/hooks/shopify/{t}", b"", "application/json"),
        ("GET", "/v1/hooks/wechat/{t}", b"", "text/plain"),
        ("POST", "/v1/hooks/youzan/{t}", b"{nope", "application/json"),
        ("POST", "/v1/hooks/shopify/{t}", b"{}", "application/x-www-form-urlencoded"),
        ("GET", "/v1/hooks/youzan/{t}", b"", ""),
        ("POST", "/v1/hooks/signed-json/{t}", b"{}", "application/json"),
        ("POST", "/v1/hooks/wechat/{t}?encrypt_type=aes", b"<nope", "text/xml"),
    ],
)
def test_given_an_unauthenticated_request_when_the_tenant_exists_then_the_answer_equals_an_unknown_tenants(
    method: str, path: str, body: bytes, content_type: str
) -> None:
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    query = {"encrypt_type": "aes"} if "encrypt_type" in path else {}
    path = path.split("?")[0]

    def send(tenant_id: str) -> Any:
        return pipeline.handle(
            make_request(
                body, method=method, path=path.format(t=tenant_id), content_type=content_type, query=query
            )
        )

    existing, unknown = send("acme"), send("nobody")

    assert (existing.status, existing.body) == (unknown.status, unknown.body) == (404, NOT_FOUND_BODY)


def test_given_an_authenticated_request_with_a_bad_content_type_then_the_normal_415() -> None:
    tenant = make_tenant()
    assert tenant.secrets.shopify
    request = shopify_request(b"{}", tenant.secrets.shopify.secret, "orders/create")
    request = replace(request, headers={**request.headers, "content-type": "application/xml"})

    assert pipeline_for(tenant).handle(request).status == 415


def test_given_a_wrong_write_key_on_the_segment_call_routes_then_still_401() -> None:
    tenant = make_tenant()
    body = {"writeKey": "nope", "userId": "u", "event": "E"}

    reply = pipeline_for(tenant).handle(make_request(json.dumps(body).encode(), path="/v1/track"))

    assert (reply.status, json.loads(reply.body)["code"]) == (401, "invalid_write_key")


# -- 5. A partial PutEvents failure does not publish the delivered events twice -------------------
class HalfBrokenPublisher(MemoryPublisher):
    """Publishes every event except those whose messageId is in ``refuse`` (once each)."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        failed = [i for i, e in enumerate(events) if e.detail["message_id"] in self.refuse]
        super().publish([e for i, e in enumerate(events) if i not in failed])
        if failed:
            self.refuse = set()
            raise PartialPublishFailed("some rejected", failed)
        return 1


def test_given_a_partial_put_events_failure_when_the_source_retries_then_only_the_missing_event_is_sent() -> (
    None
):
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    publisher = HalfBrokenPublisher({"b"})
    pipeline.publisher = publisher
    assert tenant.secrets.segment
    batch = [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in ("a", "b", "c")]
    request = make_request(
        json.dumps({"writeKey": tenant.secrets.segment.write_key, "batch": batch}).encode(), path="/v1/batch"
    )

    first = pipeline.handle(request)
    second = pipeline.handle(request)

    assert (first.status, second.status) == (503, 200)
    assert sorted(e.detail["message_id"] for e in publisher.events) == ["a", "b", "c"]


def test_given_eventbridge_rejecting_an_entry_once_when_published_then_only_that_entry_is_retried() -> None:
    from huiliu.bus import EventBridgePublisher

    class Client:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls.append([json.loads(e["Detail"])["n"] for e in Entries])
            if len(self.calls) == 1:
                results = [{"EventId": "x"}, {"ErrorCode": "ThrottlingException"}, {"EventId": "y"}]
                return {"FailedEntryCount": 1, "Entries": results}
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "z"} for _ in Entries]}

    client = Client()
    events = [OutgoingEvent("s", "t", {"n": n}) for n in ("a", "b", "c")]

    EventBridgePublisher("bus", client=client).publish(events)

    assert client.calls == [["a", "b", "c"], ["b"]]


# -- 6. Two events with one message id in one request are counted, not silently dropped ----------
def test_given_a_batch_repeating_a_message_id_when_posted_then_the_repeat_is_a_counted_duplicate() -> None:
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    assert tenant.secrets.segment
    batch = [{"type": "track", "userId": "u", "event": "E", "messageId": "same"}] * 2
    request = make_request(
        json.dumps({"writeKey": tenant.secrets.segment.write_key, "batch": batch}).encode(), path="/v1/batch"
    )

    outcome = pipeline.ingest(request)

    assert (len(outcome.accepted), outcome.duplicates) == (1, 1)
    assert pipeline.metrics.counts[("duplicates", "segment", "duplicate_in_request")] == 1  # type: ignore[attr-defined]


# -- 7. Youzan-side ids stay in Youzan's namespace ---------------------------------------------------
def test_given_youzan_outer_user_id_and_fans_id_then_they_are_youzan_ids_not_wechat_openids() -> None:
    tenant = make_tenant()
    connector = YouzanConnector()
    [trade] = connector.handle(
        youzan_request(tenant, sample_json("youzan", "trade_TradePaid.json")), tenant, NOW
    ).events
    msg = {"account_type": "FansID", "account_id": "5550001", "name": "Li"}
    customer = {**sample_json("youzan", "SCRM_CUSTOMER_EVENT.json"), "msg": json.dumps(msg)}
    [person] = connector.handle(youzan_request(tenant, customer), tenant, NOW).events

    assert trade.identifier("youzan_outer_user_id") == "yzOuter_5550001"
    assert trade.identifier("wechat_openid") is None
    assert person.identifier("youzan_fans_id") == "5550001"
    assert person.identifier("wechat_openid") is None


# -- 10. Minor ----------------------------------------------------------------------------------------
def test_given_a_youzan_trade_when_translated_then_product_ids_are_strings() -> None:
    tenant = make_tenant()
    [trade] = (
        YouzanConnector()
        .handle(youzan_request(tenant, sample_json("youzan", "trade_TradePaid.json")), tenant, NOW)
        .events
    )

    assert all(isinstance(p["product_id"], str) for p in trade.properties["products"])


def test_given_a_segment_page_with_a_category_then_it_is_kept() -> None:
    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    assert tenant.secrets.segment
    body = {"writeKey": tenant.secrets.segment.write_key, "userId": "u", "name": "Shoes", "category": "Shop"}

    pipeline.handle(make_request(json.dumps(body).encode(), path="/v1/page"))

    assert isinstance(pipeline.publisher, MemoryPublisher)
    assert pipeline.publisher.events[0].detail["properties"] == {"name": "Shoes", "category": "Shop"}


def test_given_a_numeric_track_event_name_when_posted_then_400_invalid_event() -> None:
    tenant = make_tenant()
    assert tenant.secrets.segment
    body = {"writeKey": tenant.secrets.segment.write_key, "userId": "u", "event": 42}

    reply = pipeline_for(tenant).handle(make_request(json.dumps(body).encode(), path="/v1/track"))

    assert (reply.status, json.loads(reply.body)["code"]) == (400, "invalid_event")


def test_given_a_write_key_in_the_body_when_archived_then_the_copy_holds_no_write_key() -> None:
    import base64

    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    assert tenant.secrets.segment
    key = tenant.secrets.segment.write_key
    body = {"writeKey": key, "userId": "u", "event": "E"}

    pipeline.handle(make_request(json.dumps(body).encode(), path="/v1/track"))

    [stored] = pipeline.archive.objects.values()  # type: ignore[attr-defined]
    assert key.encode() not in stored
    assert key.encode() not in base64.b64decode(json.loads(stored)["body"])


def test_given_a_replay_when_counted_then_it_is_replayed_not_received() -> None:
    from datetime import timedelta

    from huiliu.ingest import replay

    tenant = make_tenant()
    pipeline = pipeline_for(tenant)
    pipeline.handle(youzan_request(tenant, sample_json("youzan", "POINTS.json")))

    replay("acme", NOW - timedelta(minutes=1), NOW + timedelta(minutes=1), pipeline=pipeline)

    metrics = pipeline.metrics
    assert metrics.total("received") == 1  # type: ignore[attr-defined]
    assert metrics.total("replayed") == 1  # type: ignore[attr-defined]


# -- 9. The tenant cache is bounded and forgets misses quickly ---------------------------------------
class CountingRepo:
    def __init__(self) -> None:
        self.loads = 0

    def tenant_for_key_hash(self, key_hash: str) -> str | None:
        self.loads += 1
        return None


def test_given_many_made_up_write_keys_when_looked_up_then_the_cache_stays_bounded() -> None:
    from huiliu.tenants import TenantDirectory

    directory = TenantDirectory(CountingRepo(), secrets_prefix="p", salt="s", max_entries=100)  # type: ignore[arg-type]

    for n in range(1000):
        directory.tenant_for_write_key(f"guess-{n}")

    assert len(directory._cache) == 100


def test_given_an_unknown_write_key_when_the_miss_ttl_passes_then_it_is_looked_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from huiliu.tenants import TenantDirectory

    repo = CountingRepo()
    directory = TenantDirectory(repo, secrets_prefix="p", salt="s", cache_seconds=300)  # type: ignore[arg-type]
    start = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: start)
    directory.tenant_for_write_key("k")
    directory.tenant_for_write_key("k")
    monkeypatch.setattr(time, "monotonic", lambda: start + directory.miss_seconds + 1)
    directory.tenant_for_write_key("k")

    assert repo.loads == 2
