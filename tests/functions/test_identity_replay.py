"""Snapshot replay on the provisioned template (moto): every live profile of a tenant exactly once,
page by page through the sharded profile index, without a scan; merged-away profiles left out;
the last page says it is complete; the handler on the runner answers replay requests."""

from __future__ import annotations

from typing import Any

from huiliu.bus import MemoryPublisher
from huiliu.clock import ManualClock
from huiliu.contracts import ProfileChanged, ReplayCompleted, ReplayRequested, derive_event_id
from huiliu.identity.replay import replay_page
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.settings import get_settings

from tests.lambda_support import LambdaContext, load_function_fresh, sqs_record
from tests.unit.identity.identity_helpers import T0, TENANT, make_event


def _request(**extra: Any) -> ReplayRequested:
    return ReplayRequested(
        event_id=derive_event_id("r1", "start"),
        tenant_id=TENANT,
        occurred_at=T0.isoformat(),
        replay_id="r1",
        requester="segment:test@1",
        **extra,
    )


def _seed(deployed: Any, people: int) -> tuple[IdentityRepository, set[str], str]:
    repo = IdentityRepository(get_settings().identity_table, salt="s")
    service = IdentityService(repo, clock=ManualClock(T0), salt="s")
    live = set()
    for n in range(people):
        out = service.process(make_event(("email", f"p{n}@example.com"), name="Signed Up", minutes=n))
        live.add(out.profile_id)
    # two profiles of one person merge: the absorbed one must not be replayed
    a = service.process(make_event(("anonymous_id", "anon-x"), name="Page Viewed")).profile_id
    b = service.process(make_event(("email", "x@example.com"), name="Signed Up")).profile_id
    merged = service.process(make_event(("anonymous_id", "anon-x"), ("email", "x@example.com"), name="Login"))
    survivor = merged.profile_id
    live.add(survivor)
    absorbed = ({a, b} - {survivor}).pop()
    service.process(make_event(("email", "q@example.com"), tenant="other-shop"))  # another tenant
    return repo, live, absorbed


def test_replay_emits_every_live_profile_once_across_pages(deployed: Any) -> None:
    repo, live, absorbed = _seed(deployed, 23)
    request: ReplayRequested | None = _request(page_size=5)
    seen: list[str] = []
    completed: ReplayCompleted | None = None
    pages = 0
    while request is not None:
        out = replay_page(repo, request, T0)
        pages += 1
        request = None
        for event in out:
            if event.detail_type == "profile.changed":
                changed = ProfileChanged.model_validate(event.detail)
                assert changed.replay
                assert changed.replay_id == "r1"
                assert changed.version == changed.profile.version >= 1
                seen.append(changed.profile_id)
            elif event.detail_type == ReplayRequested.DETAIL_TYPE:
                request = ReplayRequested.model_validate(event.detail)
            else:
                completed = ReplayCompleted.model_validate(event.detail)
        assert pages < 50
    assert sorted(seen) == sorted(live)
    assert absorbed not in seen
    assert completed is not None
    assert completed.profiles == len(live)


def test_a_replayed_page_reemits_the_same_event_ids(deployed: Any) -> None:
    repo, _, _ = _seed(deployed, 4)
    first = replay_page(repo, _request(page_size=3), T0)
    again = replay_page(repo, _request(page_size=3), T0)
    assert [e.detail["event_id"] for e in first] == [e.detail["event_id"] for e in again]


def test_identity_handler_answers_replay_requests(deployed: Any) -> None:
    _seed(deployed, 3)
    module = load_function_fresh("identity", "identity_app_replay")
    publisher = MemoryPublisher()
    module.configure(publisher=publisher)
    try:
        body = {"detail-type": ReplayRequested.DETAIL_TYPE, "source": "huiliu.segments"}
        body["detail"] = _request(page_size=100).model_dump(mode="json")
        record = sqs_record(body, "1", queue="identity")
        context = LambdaContext(function_name="identity", memory_limit_in_mb=512)
        assert module.handler({"Records": [record]}, context) == {"batchItemFailures": []}
    finally:
        module.configure()
    kinds = [e.detail_type for e in publisher.events]
    assert kinds.count("profile.changed") == 4
    assert kinds[-1] == ReplayCompleted.DETAIL_TYPE
