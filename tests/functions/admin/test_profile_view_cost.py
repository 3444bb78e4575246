"""The 360 view's first page reads only what can reach it: DynamoDB calls do not grow with the
number of timeline events, of merges, or of absorbed profiles whose histories are older than the page."""

from __future__ import annotations

from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.settings import get_settings
from huiliu.tenants import TenantSettings

from benchmarks.bench_admin import RULES, T0, TENANT, merged_profile, view_calls


@pytest.fixture
def service(deployed: Any) -> IdentityService:
    repo = IdentityRepository(get_settings().identity_table, salt="bench")
    return IdentityService(
        repo,
        settings_for=lambda t: TenantSettings(tenant_id=t, identity_rules=RULES),
        clock=ManualClock(T0),
        salt="bench",
    )


def _intermediate_survivors(repo: IdentityRepository, profile_id: str) -> int:
    profile = repo.get_profile(TENANT, profile_id)
    assert profile is not None
    return sum(1 for p in repo.load_profiles(TENANT, profile.absorbed).values() if p.merge_count > 0)


def test_ten_merges_and_many_events_cost_three_calls_whatever_the_chain_of_survivors(
    service: IdentityService,
) -> None:
    profile_id = merged_profile(service, merges=10, events=45)
    assert _intermediate_survivors(service.repo, profile_id) > 0  # records under absorbed profiles too

    calls, view = view_calls(service.repo, profile_id, limit=20)

    assert len(view["merges"]) == 10
    assert len(view["timeline"]) == 20
    # the profile, its timeline page, and the absorbed profiles with every merge record (merge_log)
    assert calls == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}


def test_an_absorbed_profile_holding_the_newest_event_is_read_and_shown_first(
    service: IdentityService,
) -> None:
    profile_id = merged_profile(service, merges=10, events=45, newest_absorbed=True)

    _, view = view_calls(service.repo, profile_id, limit=20)

    assert view["timeline"][0]["message_id"] == "late"
    assert len(view["timeline"]) == 20
