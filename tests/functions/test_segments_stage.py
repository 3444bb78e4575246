"""The segments stage on the provisioned template (moto): identity's real profile events through
the segments Lambda handler, DynamoDB calls per event, the sweep handler on the due index, backfill
through identity's snapshot replay, and the admin API (apply, count, members, export, why)."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from huiliu import stage
from huiliu.adminapi.wiring import STAGE, AdminServices
from huiliu.bus import MemoryPublisher, OutgoingEvent
from huiliu.clock import ManualClock
from huiliu.contracts import ProfileChanged, ReplayRequested, SegmentEntered
from huiliu.identity.replay import replay_page
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.segments.admin import SegmentsAdmin
from huiliu.segments.repository import DynamoSegmentsStore, iso_of
from huiliu.segments.service import SegmentsService
from huiliu.settings import get_settings
from huiliu.tenants import TenantRepository, hash_key

from tests.functions.admin.openapi_contract import contract_of
from tests.lambda_support import LambdaContext, load_function_fresh, sqs_record
from tests.unit.identity.identity_helpers import T0, TENANT, make_event

ADMIN_KEY = "hl_admin_segments"
RECENT = {
    "id": "recent_buyers",
    "name": "Ordered in the last 30 days",
    "condition": {"event": "Order Completed", "within": "P30D"},
}
VIP = {"id": "vip", "name": "VIP", "condition": {"computed": "revenue_total", "gte": 500}}


def _admin_app() -> ModuleType:
    """The admin app, imported once per process like the other admin tests do: routers are shared
    module objects, and each app that includes them takes over their request context."""
    from tests.functions.ingest.ingest_helpers import load_function

    return load_function("admin")


def _sqs_event(events: list[OutgoingEvent]) -> dict[str, Any]:
    bodies = [{"detail-type": e.detail_type, "source": e.source, "detail": e.detail} for e in events]
    return {"Records": [sqs_record(body, f"m{i}", queue="segments") for i, body in enumerate(bodies)]}


_CTX = LambdaContext(function_name="segments", memory_limit_in_mb=512, aws_request_id="r1")


@pytest.fixture
def world(deployed: Any) -> Any:
    class World:
        clock = ManualClock(T0)
        store = DynamoSegmentsStore(get_settings().segments_table)
        service = SegmentsService(store, clock=clock, include_profile=True)
        admin = SegmentsAdmin(store, clock=clock)
        identity_repo = IdentityRepository(get_settings().identity_table, salt="s")
        identity = IdentityService(identity_repo, clock=clock, salt="s")
        published = MemoryPublisher()

    yield World
    stage.configure("segments")
    stage.configure("segment_sweep")


def _handler(world: Any, name: str) -> Any:
    """Load a stage's Lambda module (which registers its stage afresh), then inject our collaborators."""
    module = load_function_fresh(name, f"{name}_app_under_test")
    if name == "segments":
        stage.configure(name, service=world.service, publisher=world.published)
    else:
        sweeper = SegmentsService(world.store, clock=world.clock, sweep_publisher=world.published)
        stage.configure(name, service=sweeper, publisher=world.published)
    return module.handler


def _identity(world: Any, *identifiers: tuple[str, str], **kwargs: Any) -> list[OutgoingEvent]:
    return world.identity.process(make_event(*identifiers, **kwargs)).events


def test_identity_events_through_the_handler_enter_a_segment_with_one_read(world: Any) -> None:
    handler = _handler(world, "segments")
    world.admin.apply(TENANT, [RECENT, VIP])
    world.service.plan(TENANT)  # a warm container holds the compiled plan
    before = (world.store.stats.reads, world.store.stats.writes)
    transactions = world.store.stats.by_op.get("TransactWriteItems", 0)
    out = _identity(
        world, ("email", "li@x.cn"), name="Order Completed", properties={"order_id": "A1", "revenue": 99}
    )
    answer = handler(_sqs_event(out), _CTX)
    assert answer == {"batchItemFailures": []}
    entered = [e for e in world.published.events if e.detail_type == "segment.entered"]
    assert [e.detail["segment_id"] for e in entered] == ["recent_buyers"]
    assert entered[0].detail["reason"] == "conditions"
    assert world.store.stats.reads - before[0] == 1  # one BatchGetItem
    assert world.store.stats.writes - before[1] == 1  # one conditional PutItem, though a membership changed
    assert world.store.stats.by_op.get("TransactWriteItems", 0) == transactions
    assert world.admin.count(TENANT, "recent_buyers")["count"] == 1
    [member] = world.admin.members(TENANT, "recent_buyers")["members"]
    assert (member["segment_version"], member["entered_at"], member["backfill"]) == (
        1,
        iso_of(T0.timestamp()),
        False,
    )

    # a page view changes nothing segments keep (identity's change set says so): no call at all
    before = (world.store.stats.reads, world.store.stats.writes)
    handler(_sqs_event(_identity(world, ("email", "li@x.cn"), name="Page Viewed", minutes=1)), _CTX)
    assert (world.store.stats.reads - before[0], world.store.stats.writes - before[1]) == (0, 0)
    assert world.service.metrics.skipped == 1


def test_merge_and_erasure_on_dynamodb_end_memberships_and_counts(world: Any) -> None:
    from huiliu.contracts import ProfileErased, ProfileMerged

    world.admin.apply(TENANT, [RECENT])
    pids = []
    for n in range(2):
        for event in _identity(
            world, ("email", f"m{n}@x.cn"), name="Order Completed", properties={"order_id": f"M{n}"}
        ):
            if event.detail_type == "profile.changed":
                pids.append(event.detail["profile_id"])
                world.service.handle(ProfileChanged.model_validate(event.detail))
    assert world.admin.count(TENANT, "recent_buyers")["count"] == 2
    merged = ProfileMerged(
        event_id="merge-1",
        tenant_id=TENANT,
        occurred_at=T0.isoformat(),
        profile_id=pids[0],
        version=9,
        absorbed_id=pids[1],
        merge_id="m1",
    )
    assert [e.reason for e in world.service.handle(merged)] == ["merge"]
    assert world.store.get_states(TENANT, [pids[1]])[pids[1]][0].merged_into == pids[0]  # tombstone
    erased = ProfileErased(
        event_id="erase-1",
        tenant_id=TENANT,
        occurred_at=T0.isoformat(),
        profile_id=pids[0],
        profile_ids=pids,
    )
    assert [e.reason for e in world.service.handle(erased)] == ["erase"]
    assert world.store.get_states(TENANT, pids) == {}  # conditional deletes of both states
    assert world.admin.count(TENANT, "recent_buyers")["count"] == 0
    assert world.admin.members(TENANT, "recent_buyers")["members"] == []


def test_the_sweep_handler_ends_the_membership_on_day_31(world: Any) -> None:
    sweep = _handler(world, "segment_sweep")
    world.admin.apply(TENANT, [RECENT])
    for event in _identity(
        world, ("email", "li@x.cn"), name="Order Completed", properties={"order_id": "A1"}
    ):
        if event.detail_type == "profile.changed":
            world.service.handle(ProfileChanged.model_validate(event.detail))
    sweep({"time": (T0 + timedelta(days=29)).isoformat()}, _CTX)
    assert [e for e in world.published.events if e.detail_type == "segment.exited"] == []
    sweep({"time": (T0 + timedelta(days=31)).isoformat()}, _CTX)
    [exited] = [e for e in world.published.events if e.detail_type == "segment.exited"]
    assert exited.detail["reason"] == "time"
    assert world.admin.count(TENANT, "recent_buyers")["count"] == 0
    assert world.store.due_keys(0, (T0 + timedelta(days=400)).isoformat(), 10) == []


def test_a_new_segment_backfills_existing_profiles_through_identity_replay(world: Any) -> None:
    for n in range(7):
        big = 1000 if n % 2 else 10
        for event in _identity(
            world,
            ("email", f"p{n}@x.cn"),
            name="Order Completed",
            properties={"order_id": f"O{n}", "revenue": big},
            minutes=n,
        ):
            if event.detail_type == "profile.changed":
                world.service.handle(ProfileChanged.model_validate(event.detail))
    result = world.admin.apply(TENANT, [VIP])
    [request] = result.events
    pending: ReplayRequested | None = request
    entered: list[SegmentEntered] = []
    while pending is not None:
        page = replay_page(world.identity_repo, pending.model_copy(update={"page_size": 3}), T0)
        pending = None
        for event in page:
            if event.detail_type == ReplayRequested.DETAIL_TYPE:
                pending = ReplayRequested.model_validate(event.detail)
                continue
            parsed = stage.parse_record_body(
                json.dumps({"detail-type": event.detail_type, "detail": event.detail})
            )[1]
            entered += [e for e in world.service.handle(parsed) if isinstance(e, SegmentEntered)]
    assert sorted(e.profile_id for e in entered) == sorted(
        m["profile_id"] for m in world.admin.members(TENANT, "vip", limit=100)["members"]
    )
    assert len(entered) == 3
    assert all(e.backfill for e in entered)
    [progress] = world.admin.show(TENANT, "vip")["backfills"]
    assert progress["status"] == "completed"
    assert (progress["evaluated"], progress["entered"], progress["profiles"]) == (7, 3, 7)


def _admin_event(
    method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "queryStringParameters": query,
        "headers": {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "r1",
            "stage": "$default",
        },
        "body": json.dumps(body, ensure_ascii=False) if body is not None else None,
        "isBase64Encoded": False,
    }


def test_the_admin_api_applies_counts_lists_members_exports_and_explains(world: Any) -> None:
    settings = get_settings()
    TenantRepository(settings.tenants_table).put_admin_key(hash_key(ADMIN_KEY, settings.hash_salt), TENANT)
    app = _admin_app()
    publisher = MemoryPublisher()

    def writer(key: str, body: bytes) -> str:
        from huiliu import aws

        aws.client("s3").put_object(Bucket=settings.raw_bucket, Key=key, Body=body)
        return f"s3://{settings.raw_bucket}/{key}"

    stage.configure(
        STAGE,
        service=AdminServices(segments=SegmentsAdmin(world.store, clock=world.clock, export_writer=writer)),
        publisher=publisher,
    )
    try:

        def call(
            method: str, path: str, body: Any = None, query: dict[str, str] | None = None
        ) -> tuple[int, Any]:
            answer = app.handler(_admin_event(method, path, body, query), _CTX)
            status, body = answer["statusCode"], json.loads(answer["body"])
            contract_of(app).check(method, path, status, body)  # the documented shape, exactly
            return status, body

        bad = {
            "id": "bad",
            "name": "Bad",
            "condition": {"all": [{"trait": "a", "eq": 1}, {"event": "E", "within": "P1Y"}]},
        }
        status, body = call("POST", "/admin/segments/apply", {"segments": [VIP, bad]})
        assert status == 400
        assert body["problems"] == [
            {
                "path": "bad:condition.all[1].within",
                "reason": "'P1Y': months and years have no fixed length, use days (P30D)",
            }
        ]
        assert call("GET", "/admin/segments")[1]["segments"] == []  # nothing half-saved

        status, body = call("POST", "/admin/segments/apply", {"segments": [VIP]}, {"dry_run": "true"})
        assert (status, body["segments"][0]["action"], body["dry_run"]) == (200, "created", True)
        status, body = call("POST", "/admin/segments/apply", {"segments": [VIP]})
        assert body["backfill"]["replay_id"]
        assert [e.detail_type for e in publisher.events] == ["profiles.replay_requested"]

        for event in _identity(
            world,
            ("phone", "+8613800138000"),
            name="Order Completed",
            properties={"order_id": "Z", "revenue": 800},
        ):
            if event.detail_type == "profile.changed":
                pid = event.detail["profile_id"]
                world.service.handle(ProfileChanged.model_validate(event.detail))
        assert call("GET", "/admin/segments/vip/count")[1]["count"] == 1
        assert (
            call("GET", "/admin/segments/vip/members", query={"limit": "10"})[1]["members"][0]["profile_id"]
            == pid
        )
        status, why = call("GET", f"/admin/segments/vip/why/{pid}")
        assert (status, why["member"], why["explain"]["seen"]) == (200, True, 800)
        status, export = call("POST", "/admin/segments/vip/export")
        assert export["rows"] == 1
        from huiliu import aws

        csv_text = (
            aws.client("s3").get_object(Bucket=settings.raw_bucket, Key=export["key"])["Body"].read().decode()
        )
        assert csv_text.splitlines()[1].startswith(pid)
        status, preview = call(
            "POST",
            "/admin/segments/preview",
            {"id": "big", "name": "Big", "condition": {"computed": "revenue_total", "gte": 700}},
        )
        assert (status, preview["matched"], preview["evaluated"]) == (200, 1, 1)
        status, body = call("DELETE", "/admin/segments/ghost")
        assert status == 404
    finally:
        stage.configure(STAGE)


def test_one_definition_routes_for_huiliu_apply(world: Any) -> None:
    settings = get_settings()
    TenantRepository(settings.tenants_table).put_admin_key(hash_key(ADMIN_KEY, settings.hash_salt), TENANT)
    app = _admin_app()
    stage.configure(
        STAGE,
        service=AdminServices(segments=SegmentsAdmin(world.store, clock=world.clock)),
        publisher=MemoryPublisher(),
    )
    try:

        def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            answer = app.handler(_admin_event(method, path, body), _CTX)
            status, body = answer["statusCode"], json.loads(answer["body"])
            contract_of(app).check(method, path, status, body)  # the documented shape, exactly
            return status, body

        status, body = call("POST", "/admin/segments/validate", {"definition": {**VIP, "colour": 1}})
        assert (status, body["problems"]) == (400, [{"path": "vip:colour", "reason": "unknown field"}])
        assert call("POST", "/admin/segments/validate", VIP)[1]["valid"] is True
        assert call("GET", "/admin/segments/vip")[0] == 404
        status, body = call("POST", "/admin/segments", VIP)
        assert (status, body["action"], body["version"]) == (200, "created", 1)
        assert call("POST", "/admin/segments", VIP)[1]["action"] == "unchanged"
        assert call("GET", "/admin/segments/vip")[1]["definition"]["condition"] == VIP["condition"]
        openapi = call("GET", "/admin/openapi.json")[1]
        assert {"/segments", "/segments/validate", "/segments/{segment_id}/why/{profile_id}"} <= set(
            openapi["paths"]
        )
    finally:
        stage.configure(STAGE)


def test_rfm_histograms_on_dynamodb_feed_the_breakpoints(world: Any) -> None:
    world.admin.apply(TENANT, [{"id": "champions", "name": "Champions", "condition": {"rfm": "champions"}}])
    for n in range(25):
        for event in _identity(
            world,
            ("email", f"buyer{n}@x.cn"),
            name="Order Completed",
            properties={"order_id": f"R{n}", "revenue": 10 * (n + 1)},
            minutes=n,
        ):
            if event.detail_type == "profile.changed":
                world.service.handle(ProfileChanged.model_validate(event.detail))
    histogram = world.service.rfm_histogram(TENANT)
    assert sum(v for k, v in histogram.items() if k.startswith("m_")) == 25
    out = world.service.refresh_rfm(TENANT, (T0 + timedelta(days=1)).timestamp())
    assert [e.DETAIL_TYPE for e in out] == ["profiles.replay_requested"]
    assert world.admin.models(TENANT)["rfm"]["profiles"] == 25
