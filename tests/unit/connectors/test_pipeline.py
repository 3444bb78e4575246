"""The ingest pipeline with in-memory collaborators: routing, errors, dedupe leases, versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

import pytest
from huiliu.bus import MemoryPublisher, OutgoingEvent
from huiliu.clock import ManualClock
from huiliu.connectors.base import HttpRequest, TenantContext
from huiliu.errors import PublishFailed
from huiliu.ingest.fakes import StaticDirectory, memory_pipeline
from huiliu.ingest.pipeline import NOT_FOUND_BODY, IngestPipeline

from tests.unit.connectors.connector_helpers import NOW, make_request, sample_json, youzan_request


class FlakyPublisher(MemoryPublisher):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        if self.failures:
            self.failures -= 1
            raise PublishFailed("bus down")
        return super().publish(events)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def pipeline(tenant: TenantContext, clock: ManualClock) -> IngestPipeline:
    return memory_pipeline(one_tenant(tenant), clock=clock.now)


def segment_track(tenant: TenantContext, message_id: str = "m1") -> HttpRequest:
    assert tenant.secrets.segment
    body = {
        "writeKey": tenant.secrets.segment.write_key,
        "userId": "u1",
        "event": "E",
        "messageId": message_id,
    }
    return make_request(json.dumps(body).encode(), path="/v1/track")


def one_tenant(tenant: TenantContext) -> StaticDirectory:
    return StaticDirectory({"acme": (tenant.settings, tenant.secrets)})


def published(pipeline: IngestPipeline) -> list[OutgoingEvent]:
    assert isinstance(pipeline.publisher, MemoryPublisher)
    return pipeline.publisher.events


def test_given_an_unknown_tenant_and_an_unknown_connector_when_posted_then_identical_404s(
    pipeline: IngestPipeline,
) -> None:
    unknown_tenant = pipeline.handle(make_request(b"{}", path="/v1/hooks/youzan/nobody"))
    unknown_connector = pipeline.handle(make_request(b"{}", path="/v1/hooks/nosuch/acme"))

    assert unknown_tenant.status == unknown_connector.status == 404
    assert unknown_tenant.body == unknown_connector.body


def test_given_a_disabled_connector_when_posted_then_the_same_404(
    tenant: TenantContext, clock: ManualClock
) -> None:
    settings = tenant.settings.model_copy(update={"enabled_connectors": ["segment"]})
    pipeline = memory_pipeline(StaticDirectory({"acme": (settings, tenant.secrets)}), clock=clock.now)
    reference = pipeline.handle(make_request(b"{}", path="/v1/hooks/nosuch/acme"))

    reply = pipeline.handle(youzan_request(tenant, sample_json("youzan", "POINTS.json")))

    assert (reply.status, reply.body) == (reference.status, reference.body)


def test_given_a_body_over_the_limit_when_posted_then_413(tenant: TenantContext, clock: ManualClock) -> None:
    pipeline = memory_pipeline(one_tenant(tenant), max_body_bytes=100)

    reply = pipeline.handle(make_request(b"{" + b" " * 200 + b"}", path="/v1/hooks/youzan/acme"))

    assert reply.status == 413
    assert json.loads(reply.body)["code"] == "payload_too_large"


def test_given_malformed_json_when_posted_then_400_invalid_json(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    reply = pipeline.handle(youzan_request(tenant, b"{nope"))

    assert reply.status == 400
    assert json.loads(reply.body)["code"] == "invalid_json"


def test_given_a_failed_publish_when_the_source_retries_then_the_event_is_published_once(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    pipeline.publisher = FlakyPublisher(failures=1)

    first = pipeline.handle(segment_track(tenant))
    second = pipeline.handle(segment_track(tenant))

    assert first.status == 503
    assert second.status == 200
    assert len(published(pipeline)) == 1


def test_given_a_claim_left_by_a_crash_when_retried_within_the_lease_then_503_and_after_it_published(
    tenant: TenantContext, pipeline: IngestPipeline, clock: ManualClock
) -> None:
    pipeline.dedupe.claim(["acme#segment#m1"], clock.now())

    during = pipeline.handle(segment_track(tenant))
    clock.advance(timedelta(seconds=60))
    after = pipeline.handle(segment_track(tenant))

    assert during.status == 503
    assert json.loads(during.body)["code"] == "in_progress"
    assert after.status == 200
    assert len(published(pipeline)) == 1


def test_given_a_newer_youzan_version_seen_when_an_older_arrives_then_it_is_acknowledged_and_dropped(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    newer = {**sample_json("youzan", "trade_TradePaid.json"), "version": 7, "msg_id": "new"}
    older = {**sample_json("youzan", "trade_TradePaid.json"), "version": 3, "msg_id": "old"}

    pipeline.handle(youzan_request(tenant, newer))
    reply = pipeline.handle(youzan_request(tenant, older))

    assert reply.status == 200
    assert [e.detail["message_id"] for e in published(pipeline)] == ["new"]


def test_given_a_correlation_header_when_posted_then_every_event_carries_it(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    request = segment_track(tenant)
    request.headers["x-correlation-id"] = "corr-123"

    pipeline.handle(request)

    assert published(pipeline)[0].detail["correlation_id"] == "corr-123"


def test_given_a_gzip_bomb_when_posted_then_413(tenant: TenantContext, clock: ManualClock) -> None:
    import gzip

    pipeline = memory_pipeline(one_tenant(tenant), max_body_bytes=10_000)
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    request = make_request(bomb, path="/v1/batch", headers={"content-encoding": "gzip"})

    assert pipeline.handle(request).status == 413


def test_given_a_rejected_request_when_counted_then_the_reason_is_a_metric_dimension(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    pipeline.handle(youzan_request(tenant, b"{nope"))

    assert pipeline.metrics.counts[("rejected", "youzan", "invalid_json")] == 1


def test_given_archived_requests_when_replayed_then_dedupe_skips_them_unless_forced(
    tenant: TenantContext, pipeline: IngestPipeline, clock: ManualClock
) -> None:
    from huiliu.ingest import replay

    pipeline.handle(segment_track(tenant, "r1"))
    clock.advance(timedelta(minutes=10))
    pipeline.handle(youzan_request(tenant, sample_json("youzan", "POINTS.json")))
    window = (NOW - timedelta(minutes=1), NOW + timedelta(hours=1))

    deduped = replay("acme", *window, pipeline=pipeline)
    forced = replay("acme", *window, pipeline=pipeline, force=True)

    # (the POINTS push makes two events: identify with the total, and Points Changed)
    assert (deduped.requests, deduped.accepted, deduped.duplicates) == (2, 0, 3)
    assert (forced.requests, forced.accepted) == (2, 3)
    assert forced.failed == []


def test_given_a_lost_event_when_its_time_range_is_replayed_then_it_is_published_with_its_raw_ref(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    from huiliu.ingest import replay

    pipeline.handle(segment_track(tenant, "lost"))
    pipeline.dedupe.release(["acme#segment#lost"])  # as if the bus had lost it and dedupe was cleared
    published(pipeline).clear()

    report = replay("acme", NOW, NOW + timedelta(seconds=1), connector="segment", pipeline=pipeline)

    assert report.accepted == 1
    [event] = published(pipeline)
    assert event.detail["raw_ref"].startswith("raw/acme/segment/2026/01/02/030405-")
    assert event.detail["received_at"] == "2026-01-02T03:04:05Z"


def test_given_the_segment_hooks_route_with_the_tenants_write_key_when_posted_then_the_message_is_ingested(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    assert tenant.secrets.segment
    body = {
        "writeKey": tenant.secrets.segment.write_key,
        "type": "identify",
        "userId": "u9",
        "messageId": "h1",
    }

    reply = pipeline.handle(make_request(json.dumps(body).encode(), path="/v1/hooks/segment/acme"))

    assert reply.status == 200
    assert published(pipeline)[0].detail["type"] == "identify"


def test_given_the_segment_hooks_route_with_another_write_key_when_posted_then_the_unknown_tenant_404(
    pipeline: IngestPipeline,
) -> None:
    body = {"writeKey": "someone-elses", "type": "identify", "userId": "u9"}
    reference = pipeline.handle(make_request(b"{}", path="/v1/hooks/segment/nobody"))

    reply = pipeline.handle(make_request(json.dumps(body).encode(), path="/v1/hooks/segment/acme"))

    assert (reply.status, reply.body) == (reference.status, reference.body) == (404, NOT_FOUND_BODY)
    assert pipeline.metrics.counts[("rejected", "segment", "invalid_write_key")] == 1


def test_given_powertools_metrics_when_a_request_is_rejected_then_emf_carries_connector_and_reason(
    tenant: TenantContext, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    from huiliu.ingest.metrics import PowertoolsIngestMetrics

    pipeline = memory_pipeline(one_tenant(tenant), clock=clock.now)
    pipeline.metrics = PowertoolsIngestMetrics()

    pipeline.handle(youzan_request(tenant, b"{nope"))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    rejected = next(line for line in lines if "rejected" in line)
    assert rejected["connector"] == "youzan"
    assert rejected["reason"] == "invalid_json"
    assert rejected["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Huiliu"
    assert any(line.get("received") == [1.0] and "reason" not in line for line in lines)


def test_given_a_batch_holding_one_event_over_32_kb_when_posted_then_413_naming_it(
    tenant: TenantContext, pipeline: IngestPipeline
) -> None:
    assert tenant.secrets.segment
    batch = [
        {"type": "track", "userId": "u", "event": "E"},
        {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * 40_000}},
    ]
    body = {"writeKey": tenant.secrets.segment.write_key, "batch": batch}

    reply = pipeline.handle(make_request(json.dumps(body).encode(), path="/v1/batch"))

    assert reply.status == 413
    assert json.loads(reply.body)["code"] == "event_too_large"
    assert published(pipeline) == []
