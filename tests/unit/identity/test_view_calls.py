"""The 360 view's DynamoDB calls (issue 13 benchmark: <= 4 for 10 merges and 1,000 events, first page)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from huiliu.clock import ManualClock
from huiliu.identity.admin import ProfileAdmin
from huiliu.identity.repository import MemoryIdentityRepository, profile_pk
from huiliu.identity.service import IdentityService
from huiliu.storage.dynamo import CallStats
from huiliu.tenants import TenantSettings

from benchmarks.bench_admin import RULES, TENANT, merged_profile

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _world(events: int = 1000) -> tuple[MemoryIdentityRepository, IdentityService, str]:
    repo = MemoryIdentityRepository(salt="s")
    service = IdentityService(
        repo,
        settings_for=lambda t: TenantSettings(tenant_id=t, identity_rules=RULES),
        clock=ManualClock(T0),
        salt="s",
        backoff=lambda attempt: None,
    )
    return repo, service, merged_profile(service, merges=10, events=events)


def _view(repo: MemoryIdentityRepository, profile_id: str) -> tuple[dict[str, int], dict[str, Any]]:
    repo.stats = CallStats()
    view = ProfileAdmin(repo).view(TENANT, profile_id, limit=50)
    return dict(repo.stats.by_op), view


def _records(repo: MemoryIdentityRepository) -> list[dict[str, Any]]:
    return [i for (_pk, sk), i in repo.items.items() if sk.startswith("MERGE#")]


def test_given_10_merges_and_1000_events_when_the_first_page_is_viewed_then_3_calls() -> None:
    repo, _service, survivor = _world()

    calls, view = _view(repo, survivor)

    # the profile, one timeline page, the absorbed profiles and every merge record in one batch
    assert calls == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
    assert sum(calls.values()) <= 4
    records = _records(repo)
    assert len(records) >= 10  # chains of survivors: some records live under absorbed profiles
    assert sorted(m["merge_id"] for m in view["merges"]) == sorted(r["merge_id"] for r in records)
    assert len(view["absorbed_ids"]) == 10
    assert len(view["timeline"]) == 50
    assert view["next_cursor"]


def test_given_a_profile_written_before_the_merge_log_when_viewed_then_the_same_merges_by_query() -> None:
    repo, _service, survivor = _world(events=60)
    _calls, expected = _view(repo, survivor)
    for key, item in list(repo.items.items()):
        if key[1] == "PROFILE":
            repo.items[key] = {k: v for k, v in item.items() if k != "merge_log"}

    calls, view = _view(repo, survivor)

    assert calls["Query"] > 1  # the merge records are queried, as before the log was kept
    assert view["merges"] == expected["merges"]
    assert view["timeline"] == expected["timeline"]


def test_given_an_unmerge_when_both_are_viewed_then_each_shows_its_own_records() -> None:
    repo, _service, survivor = _world(events=60)
    admin = ProfileAdmin(repo, clock=ManualClock(T0))
    view = admin.view(TENANT, survivor)
    mine = [m for m in view["merges"] if m["survivor_id"] == survivor]
    owners = {m["survivor_id"] for m in view["merges"]}
    # an absorbed profile that holds merge records of its own, if the chain made one
    undone = next((m for m in mine if m["absorbed_id"] in owners), mine[0])

    admin.unmerge(TENANT, survivor, merge_id=undone["merge_id"])
    calls, after = _view(repo, survivor)
    _calls, restored = _view(repo, undone["absorbed_id"])

    assert calls == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
    by_id = {m["merge_id"]: m for m in after["merges"]}
    assert by_id[undone["merge_id"]]["status"] == "undone"  # the undone record stays in its view
    restored_own = {
        r["merge_id"]
        for r in _records(repo)
        if r["pk"] in {profile_pk(TENANT, p) for p in [undone["absorbed_id"], *restored["absorbed_ids"]]}
    }
    assert {m["merge_id"] for m in restored["merges"]} == restored_own
    assert not restored_own & (set(by_id) - {undone["merge_id"]})
    # what the query path would show for each, too
    for pid, shown in ((survivor, after), (undone["absorbed_id"], restored)):
        legacy = dict(repo.items[(profile_pk(TENANT, pid), "PROFILE")])
        legacy.pop("merge_log", None)
        repo.items[(profile_pk(TENANT, pid), "PROFILE")] = legacy
        _c, queried = _view(repo, pid)
        assert sorted(m["merge_id"] for m in queried["merges"]) == sorted(
            m["merge_id"] for m in shown["merges"]
        )
