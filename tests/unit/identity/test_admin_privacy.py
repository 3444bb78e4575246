"""Erase leaves nothing of the person anywhere, unmerge sticks, survivorship after unmerge, cursors."""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.errors import BadRequest
from huiliu.identity.admin import ProfileAdmin
from huiliu.identity.repository import IdentityRepository, MemoryIdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import DetailType, Identifier
from huiliu.storage.dynamo import CallStats

from tests.unit.identity.identity_helpers import TENANT, make_event

PHONE = Identifier(type="phone", value="+8613800138000")


@pytest.fixture
def admin(repo: IdentityRepository, clock: ManualClock) -> ProfileAdmin:
    return ProfileAdmin(repo, clock=clock)


def _pair(service: IdentityService, clock: ManualClock) -> tuple[str, str]:
    older = service.process(make_event(("email", "li@x.cn"), traits={"name": "Li"}))
    clock.advance(timedelta(minutes=1))
    newer = service.process(make_event(("phone", "13800138000"), traits={"city": "HZ"}, minutes=5))
    service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=10))
    assert older.profile_id
    assert newer.profile_id
    return older.profile_id, newer.profile_id


def _dump(moto_tables: Any) -> str:
    items = moto_tables.scan(TableName="identity-test")["Items"]
    text = []
    for item in items:
        for value in item.values():
            if "B" in value:
                text.append(zlib.decompress(value["B"]).decode())
        text.append(str(item))
    return "\n".join(text)


def test_given_an_unmerged_person_when_erased_then_no_merge_record_or_marker_elsewhere_keeps_them(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock, moto_tables: Any
) -> None:
    survivor, absorbed = _pair(service, clock)
    admin.unmerge(TENANT, survivor, absorbed_id=absorbed)
    assert "13800138000" in _dump(moto_tables)

    admin.erase(TENANT, PHONE)

    left = _dump(moto_tables)
    assert "13800138000" not in left
    assert "HZ" not in left
    assert admin.view(TENANT, survivor)["merges"] == []


def test_given_processed_markers_then_they_hold_no_identifier_values_but_redelivery_restores_them(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    first = make_event(("member_id", "M1"), ("email", "shared@x.cn"))
    memory_service.process(first)
    second = make_event(("member_id", "M2"), ("email", "shared@x.cn"), minutes=1)
    done = memory_service.process(second)

    # the processed markers: each event's out-events, on its timeline item
    markers = [(pk, i) for (pk, sk), i in memory_repo.items.items() if sk.startswith("TL#") and "out" in i]
    assert len(markers) == 2
    for pk, item in markers:
        stored = zlib.decompress(bytes(item["out"])).decode()
        assert not {"shared@x.cn", "M1", "M2"} & {w.strip('"') for w in stored.replace(",", " ").split()}, pk
        assert "shared@x.cn" not in stored
    again = memory_service.process(second)
    assert again.status == "duplicate"
    assert [e.detail for e in again.events] == [e.detail for e in done.events]


def test_given_a_conflicting_identifier_then_the_timeline_item_keeps_only_what_was_attached(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    memory_service.process(make_event(("member_id", "M1"), ("email", "shared@x.cn")))
    second = memory_service.process(make_event(("member_id", "M2"), ("email", "shared@x.cn"), minutes=1))

    (item,) = [
        i for (pk, sk), i in memory_repo.items.items() if sk.startswith("TL#") and second.profile_id in pk
    ]
    assert item["identifiers"] == [{"type": "member_id", "value": "M2"}]


def test_given_an_unmerge_when_the_same_link_comes_again_then_they_stay_apart_with_reason_unmerged(
    service: IdentityService, admin: ProfileAdmin, repo: IdentityRepository, clock: ManualClock
) -> None:
    survivor, absorbed = _pair(service, clock)
    admin.unmerge(TENANT, survivor, absorbed_id=absorbed)
    service.forget(TENANT, [PHONE, Identifier(type="email", value="li@x.cn")])

    again = service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=20))

    assert again.merged == []
    assert again.profile_id == absorbed  # phone (priority 6) outranks email (7)
    (conflict,) = [e for e in again.events if e.detail_type == DetailType.IDENTITY_CONFLICT]
    assert conflict.detail["reason"] == "unmerged"
    assert conflict.detail["held_by"] == survivor
    assert repo.get_profile(TENANT, survivor).merged_into is None  # type: ignore[union-attr]


def test_given_a_warm_cache_when_an_old_event_of_an_erased_and_returned_person_replays_then_skipped(
    memory_repo: MemoryIdentityRepository, memory_service: IdentityService, clock: ManualClock
) -> None:
    old = make_event(("email", "back@x.cn"), minutes=1)
    memory_service.process(make_event(("email", "back@x.cn")))
    ProfileAdmin(memory_repo, clock=clock).erase(TENANT, Identifier(type="email", value="back@x.cn"))
    clock.advance(timedelta(days=1))
    memory_service.process(make_event(("email", "back@x.cn"), at=clock.now()))  # warms the cache
    memory_repo.stats = CallStats()

    outcome = memory_service.process(old)

    assert outcome.status == "skipped"
    # the known-person path: the profile (which remembers the erasure), and for an event received
    # before the profile's applied-event ring begins, its timeline item (the processed marker)
    assert memory_repo.stats.by_op == {"BatchGetItem": 2}


def test_given_an_erased_person_when_they_return_then_their_profile_gets_a_new_id(
    memory_repo: MemoryIdentityRepository, memory_service: IdentityService, clock: ManualClock
) -> None:
    gone = memory_service.process(make_event(("email", "back@x.cn")))
    ProfileAdmin(memory_repo, clock=clock).erase(TENANT, Identifier(type="email", value="back@x.cn"))
    clock.advance(timedelta(days=1))

    back = memory_service.process(make_event(("email", "back@x.cn"), at=clock.now()))
    other = IdentityService(memory_repo, clock=clock, salt="test-salt")
    racing = other.process(make_event(("email", "back@x.cn"), at=clock.now()))

    assert back.profile_id != gone.profile_id
    assert racing.profile_id == back.profile_id


def test_given_the_survivor_got_a_trait_itself_after_the_merge_when_unmerged_then_it_keeps_its_value(
    service: IdentityService, admin: ProfileAdmin, repo: IdentityRepository, clock: ManualClock
) -> None:
    older = service.process(make_event(("email", "li@x.cn")))
    clock.advance(timedelta(minutes=1))
    newer = service.process(make_event(("phone", "13800138000"), traits={"city": "HZ"}, minutes=30))
    service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=40))
    # the survivor's own (older) event arrives late: city=SH loses to HZ by event time
    service.process(make_event(("email", "li@x.cn"), traits={"city": "SH"}, minutes=20))

    admin.unmerge(TENANT, older.profile_id, absorbed_id=newer.profile_id)  # type: ignore[arg-type]

    kept = repo.get_profile(TENANT, older.profile_id)  # type: ignore[arg-type]
    assert kept is not None
    assert kept.traits.get("city") == "SH"


def test_given_a_cursor_that_is_not_a_timeline_key_then_bad_cursor(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    survivor, _ = _pair(service, clock)

    for cursor in ("A", "TL#" + "x" * 1000, "MERGE#x"):
        with pytest.raises(BadRequest) as caught:
            admin.view(TENANT, survivor, cursor=cursor)
        assert caught.value.reason == "bad_cursor"


def test_given_archived_requests_when_the_person_is_erased_then_the_archive_is_asked_to_remove_them(
    service: IdentityService, admin: ProfileAdmin, clock: ManualClock
) -> None:
    # Given two of the person's events that came from archived raw requests (one merged in later)
    first = "raw/acme/segment/2026/03/01/080000-req-1.json"
    second = "raw/acme/shopify/2026/03/01/080500-req-2.json"
    service.process(make_event(("email", "li@x.cn"), raw_ref=first))
    clock.advance(timedelta(minutes=1))
    service.process(make_event(("phone", "13800138000"), raw_ref=second, minutes=5))
    service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=10))

    # When the person is erased
    result = admin.erase(TENANT, PHONE)

    # Then besides profile.erased, archive.erase_requested names both archived requests
    [archive] = [e for e in result.events if e.detail_type == "archive.erase_requested"]
    assert sorted(archive.detail["raw_refs"]) == [first, second]
    assert archive.detail["tenant_id"] == TENANT
