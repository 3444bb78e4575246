"""360 view, unmerge, erase and export on moto."""

from __future__ import annotations

from datetime import timedelta

import pytest
from huiliu.clock import ManualClock
from huiliu.errors import Conflict, NotFound
from huiliu.identity.admin import ProfileAdmin
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import DetailType, Identifier

from tests.unit.identity.identity_helpers import TENANT, make_event


@pytest.fixture
def admin(repo: IdentityRepository, clock: ManualClock) -> ProfileAdmin:
    return ProfileAdmin(repo, clock=clock)


def _merged_pair(service: IdentityService, clock: ManualClock) -> tuple[str, str]:
    older = service.process(
        make_event(("email", "li@x.cn"), traits={"name": "Li", "city": "SH"}, name="Signed Up")
    )
    clock.advance(timedelta(minutes=1))
    newer = service.process(
        make_event(
            ("phone", "13800138000"),
            traits={"city": "HZ"},
            name="Order Completed",
            properties={"order_id": "o1", "revenue": 30},
            minutes=5,
        )
    )
    service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=10))
    assert older.profile_id is not None
    assert newer.profile_id is not None
    return older.profile_id, newer.profile_id


def test_given_a_merged_person_then_the_360_view_shows_absorbed_ids_merges_and_the_whole_timeline(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    survivor, absorbed = _merged_pair(service, clock)

    view = admin.view(TENANT, absorbed)

    assert view["profile_id"] == survivor
    assert view["absorbed_ids"] == [absorbed]
    assert [m["absorbed_id"] for m in view["merges"]] == [absorbed]
    assert len(view["timeline"]) == 3
    assert [t["timestamp"] for t in view["timeline"]] == sorted(
        (t["timestamp"] for t in view["timeline"]), reverse=True
    )


def test_given_a_long_timeline_then_pages_follow_the_cursor_newest_first_without_gaps(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    survivor, _ = _merged_pair(service, clock)
    for n in range(5):
        service.process(make_event(("email", "li@x.cn"), name="Page Viewed", minutes=20 + n))

    first = admin.view(TENANT, survivor, limit=3)
    second = admin.view(TENANT, survivor, cursor=first["next_cursor"], limit=3)
    third = admin.view(TENANT, survivor, cursor=second["next_cursor"], limit=3)

    seen = [t["message_id"] for page in (first, second, third) for t in page["timeline"]]
    assert len(seen) == len(set(seen)) == 8
    assert third["next_cursor"] is None


def test_given_a_merge_when_an_admin_unmerges_it_then_the_absorbed_profile_comes_back_whole(
    service: IdentityService, admin: ProfileAdmin, repo: IdentityRepository, clock: ManualClock
) -> None:
    survivor, absorbed = _merged_pair(service, clock)

    result = admin.unmerge(TENANT, survivor, absorbed_id=absorbed)

    back = repo.get_profile(TENANT, absorbed)
    kept = repo.get_profile(TENANT, survivor)
    assert back is not None
    assert kept is not None
    assert back.merged_into is None
    assert back.identifiers == [Identifier(type="phone", value="+8613800138000")]
    assert back.traits == {"city": "HZ"}
    assert back.computed["order_count"] == 1
    assert kept.identifiers == [Identifier(type="email", value="li@x.cn")]
    assert kept.traits == {"name": "Li", "city": "SH"}
    assert kept.absorbed == []
    assert "order_count" not in kept.computed or kept.computed["order_count"] == 0
    assert repo.claim_owner(TENANT, Identifier(type="phone", value="+8613800138000")) == absorbed
    assert len(admin.view(TENANT, absorbed)["timeline"]) == 1
    assert next(e.detail_type for e in result.events) == DetailType.PROFILE_UNMERGED
    assert result.events[0].detail["restored_id"] == absorbed


def test_given_an_undone_merge_when_unmerged_again_then_it_is_not_found(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    survivor, _absorbed = _merged_pair(service, clock)
    merge_id = admin.view(TENANT, survivor)["merges"][0]["merge_id"]
    admin.unmerge(TENANT, survivor, merge_id=merge_id)

    with pytest.raises(NotFound):
        admin.unmerge(TENANT, survivor, merge_id=merge_id)


def test_given_a_survivor_that_was_merged_again_when_unmerging_its_old_merge_then_it_is_refused(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    clock.advance(timedelta(days=-1))
    oldest = service.process(make_event(("user_id", "u1")))
    clock.advance(timedelta(days=1))
    survivor, absorbed = _merged_pair(service, clock)
    service.process(make_event(("user_id", "u1"), ("email", "li@x.cn"), minutes=30))
    assert admin.lookup(TENANT, Identifier(type="email", value="li@x.cn")) == oldest.profile_id

    with pytest.raises(Conflict):
        admin.unmerge(TENANT, survivor, absorbed_id=absorbed)


def test_given_a_person_when_erased_then_nothing_is_left_and_old_replays_do_not_recreate_them(
    service: IdentityService, admin: ProfileAdmin, repo: IdentityRepository, clock: ManualClock, moto_tables
) -> None:
    survivor, absorbed = _merged_pair(service, clock)
    old_event = make_event(("phone", "13800138000"), traits={"name": "Li"}, minutes=15)

    result = admin.erase(TENANT, admin.identifier(TENANT, "phone", "+86 138 0013 8000"))

    left = moto_tables.scan(TableName="identity-test")["Items"]
    assert {i["sk"]["S"] for i in left} == {"ERASED"}
    assert all("li@x.cn" not in str(i) and "13800138000" not in str(i) for i in left)
    assert result.events[0].detail_type == DetailType.PROFILE_ERASED
    assert set(result.events[0].detail["profile_ids"]) == {survivor, absorbed}
    assert service.process(old_event).status == "skipped"
    clock.advance(timedelta(days=2))
    fresh = make_event(("phone", "13800138000"), at=clock.now())
    assert service.process(fresh).status == "processed"


def test_given_a_person_when_exported_then_profile_timeline_and_merges_are_in_the_document(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    survivor, absorbed = _merged_pair(service, clock)

    doc = admin.export(TENANT, survivor)

    assert doc["profile"]["profile_id"] == survivor
    assert [p["profile_id"] for p in doc["absorbed_profiles"]] == [absorbed]
    assert len(doc["timeline"]) == 3
    assert doc["merges"][0]["absorbed_id"] == absorbed
