"""Merge, limits, blocked values, priority, shared devices and the size guard (in-memory store)."""

from __future__ import annotations

from datetime import timedelta

from huiliu.clock import ManualClock
from huiliu.identity.repository import MemoryIdentityRepository, claim_pk
from huiliu.identity.rules import IdentityRules
from huiliu.identity.service import IdentityService
from huiliu.models import DetailType, Identifier
from huiliu.tenants import TenantSettings

from tests.unit.identity.identity_helpers import TENANT, make_event


def _owner(repo: MemoryIdentityRepository, kind: str, value: str) -> str | None:
    item = repo.items.get((claim_pk(TENANT, Identifier(type=kind, value=value)), "CLAIM"))
    return item["profile_id"] if item else None


def test_given_two_profiles_when_an_event_links_them_then_they_merge_into_the_oldest(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository, clock: ManualClock
) -> None:
    older = memory_service.process(make_event(("email", "li@x.cn"), traits={"name": "Li"}))
    clock.advance(timedelta(minutes=1))
    newer = memory_service.process(make_event(("phone", "13800138000"), traits={"city": "HZ"}, minutes=1))

    linked = memory_service.process(make_event(("phone", "13800138000"), ("email", "li@x.cn"), minutes=2))

    assert linked.profile_id == older.profile_id
    assert linked.merged == [newer.profile_id]
    survivor = memory_repo.get_profile(TENANT, older.profile_id)
    loser = memory_repo.get_profile(TENANT, newer.profile_id)
    assert survivor is not None
    assert loser is not None
    assert loser.merged_into == older.profile_id
    assert survivor.absorbed == [newer.profile_id]
    assert survivor.traits == {"name": "Li", "city": "HZ"}
    assert _owner(memory_repo, "phone", "+8613800138000") == older.profile_id
    (merged,) = [e for e in linked.events if e.detail_type == DetailType.PROFILE_MERGED]
    assert merged.detail["absorbed_id"] == newer.profile_id
    assert memory_repo.merge_records(TENANT, older.profile_id)[0]["absorbed_id"] == newer.profile_id


def test_given_two_member_ids_when_an_email_links_them_then_no_merge_and_a_conflict_is_recorded(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    first = memory_service.process(make_event(("member_id", "M1"), ("email", "shared@x.cn")))
    second = memory_service.process(make_event(("member_id", "M2"), ("email", "shared@x.cn"), minutes=1))

    assert second.profile_id != first.profile_id
    assert second.merged == []
    assert _owner(memory_repo, "email", "shared@x.cn") == first.profile_id
    (conflict,) = [e for e in second.events if e.detail_type == DetailType.IDENTITY_CONFLICT]
    assert conflict.detail["reason"] == "limit:member_id"
    assert conflict.detail["identifier"] == {"type": "email", "value": "shared@x.cn"}
    assert conflict.detail["held_by"] == first.profile_id


def test_given_a_conflicting_event_then_the_highest_priority_identifier_decides_where_it_goes(
    memory_service: IdentityService,
) -> None:
    by_email = memory_service.process(make_event(("member_id", "M1"), ("email", "e@x.cn")))
    by_user = memory_service.process(make_event(("user_id", "U7"), ("member_id", "M9")))

    outcome = memory_service.process(make_event(("user_id", "U7"), ("email", "e@x.cn"), minutes=1))

    assert outcome.profile_id == by_user.profile_id != by_email.profile_id


def test_given_placeholder_values_when_two_people_share_them_then_they_never_merge(
    memory_service: IdentityService,
) -> None:
    a = memory_service.process(make_event(("email", "a@x.cn"), ("phone", "13900000000"), ("user_id", "null")))
    b = memory_service.process(
        make_event(("email", "b@x.cn"), ("phone", "139-0000-0000"), ("anonymous_id", "undefined"))
    )
    c = memory_service.process(make_event(("email", "noemail@shop.cn"), ("member_id", "0000")))
    d = memory_service.process(make_event(("email", "d@x.cn"), ("member_id", "----")))

    assert len({a.profile_id, b.profile_id}) == 2
    assert c.status == "skipped"
    assert d.merged == []


def test_given_blocked_words_then_rules_reject_them_and_accept_real_values() -> None:
    rules = IdentityRules.from_settings(blocked_values=["+86 139 0000 0000"])

    usable, dropped = rules.clean(
        [
            Identifier(type="user_id", value="NULL"),
            Identifier(type="anonymous_id", value="anonymous"),
            Identifier(type="phone", value="13900000000"),
            Identifier(type="email", value="0000@x.cn"),
            Identifier(type="member_id", value="000-000"),
            Identifier(type="phone", value="+86 138-0013-8000"),
        ]
    )

    assert usable == [Identifier(type="phone", value="+8613800138000")]
    assert len(dropped) == 5


def test_given_a_shared_device_when_two_people_log_in_on_it_then_the_user_id_limit_keeps_them_apart(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    a = memory_service.process(make_event(("anonymous_id", "ipad-1"), ("user_id", "mum")))
    b = memory_service.process(make_event(("anonymous_id", "ipad-1"), ("user_id", "son"), minutes=1))

    assert a.profile_id != b.profile_id
    assert b.merged == []
    assert [e.detail["reason"] for e in b.events if e.detail_type == DetailType.IDENTITY_CONFLICT] == [
        "limit:user_id"
    ]
    assert _owner(memory_repo, "anonymous_id", "ipad-1") == a.profile_id


def test_given_a_shop_tablet_when_two_customers_sign_in_with_emails_then_the_device_does_not_glue_them(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    # Two emails are within the email limit (5), but they meet only on a device: two people.
    mei = memory_service.process(make_event(("email", "mei@x.cn"), ("phone", "13800138000")))
    memory_service.process(make_event(("anonymous_id", "tablet-7"), ("email", "mei@x.cn"), minutes=1))
    bo = memory_service.process(make_event(("anonymous_id", "tablet-7"), ("email", "bo@x.cn"), minutes=2))

    assert bo.profile_id != mei.profile_id
    assert bo.merged == []
    assert [e.detail["reason"] for e in bo.events if e.detail_type == DetailType.IDENTITY_CONFLICT] == [
        "weak_link:email"
    ]
    assert _owner(memory_repo, "email", "bo@x.cn") == bo.profile_id
    assert _owner(memory_repo, "anonymous_id", "tablet-7") == mei.profile_id


def test_given_a_second_email_with_a_strong_identifier_then_it_is_attached(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    # The same second email is attached when it arrives with the person's phone (strong evidence).
    mei = memory_service.process(make_event(("email", "mei@x.cn"), ("phone", "13800138000")))
    memory_service.process(make_event(("phone", "13800138000"), ("email", "mei.work@x.cn"), minutes=1))

    assert _owner(memory_repo, "email", "mei.work@x.cn") == mei.profile_id


def test_given_anonymous_browsing_then_email_sign_up_when_the_visitor_logs_in_then_one_profile(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    signup = memory_service.process(make_event(("anonymous_id", "a1"), ("email", "e@x.cn")))

    login = memory_service.process(make_event(("user_id", "u1"), ("anonymous_id", "a1"), minutes=1))

    assert login.profile_id == signup.profile_id
    assert [e for e in login.events if e.detail_type == DetailType.IDENTITY_CONFLICT] == []
    assert _owner(memory_repo, "user_id", "u1") == signup.profile_id


def test_given_browse_sign_up_log_in_in_any_of_the_six_orders_then_the_same_single_profile(
    clock: ManualClock,
) -> None:
    import itertools

    journey = [
        make_event(("anonymous_id", "a1"), name="Page Viewed", message_id="e0"),
        make_event(("anonymous_id", "a1"), ("email", "e@x.cn"), name="Signed Up", minutes=1, message_id="e1"),
        make_event(("user_id", "u1"), ("anonymous_id", "a1"), name="Signed In", minutes=2, message_id="e2"),
    ]
    groupings = set()
    for order in itertools.permutations(journey):
        repo = MemoryIdentityRepository(salt="s")
        service = IdentityService(repo, clock=clock, salt="s")
        outcomes = [service.process(e) for e in order]
        live = {
            p["profile_id"]
            for (_pk, sk), p in repo.items.items()
            if sk == "PROFILE" and not p.get("merged_into")
        }
        (profile,) = [repo.get_profile(TENANT, pid) for pid in live]
        assert profile is not None
        groupings.add(frozenset((i.type, i.value) for i in profile.identifiers))
        assert not any(e.detail_type == DetailType.IDENTITY_CONFLICT for o in outcomes for e in o.events)

    assert groupings == {frozenset({("anonymous_id", "a1"), ("email", "e@x.cn"), ("user_id", "u1")})}


def test_given_anonymous_browsing_when_the_visitor_logs_in_then_the_anonymous_profile_is_absorbed(
    memory_service: IdentityService,
) -> None:
    known = memory_service.process(make_event(("email", "a@x.cn")))
    browsing = memory_service.process(make_event(("anonymous_id", "web-1"), name="Product Viewed", minutes=1))

    login = memory_service.process(make_event(("anonymous_id", "web-1"), ("email", "a@x.cn"), minutes=2))

    assert login.profile_id == known.profile_id
    assert login.merged == [browsing.profile_id]


def test_given_the_merge_guard_when_a_profile_has_too_many_merges_then_it_does_not_merge_again(
    memory_repo: MemoryIdentityRepository, clock: ManualClock
) -> None:
    settings = TenantSettings(tenant_id=TENANT, identity_rules={"_guard": {"max_merges": 2}})
    service = IdentityService(memory_repo, settings_for=lambda t: settings, clock=clock, salt="s")
    hub = service.process(make_event(("email", "hub@x.cn")))
    for n in range(3):
        clock.advance(timedelta(minutes=1))
        service.process(make_event(("phone", f"1380013800{n}")))
        service.process(make_event(("phone", f"1380013800{n}"), ("email", "hub@x.cn")))

    profile = memory_repo.get_profile(TENANT, hub.profile_id)
    assert profile is not None
    assert profile.merge_count == 2
    assert _owner(memory_repo, "phone", "+8613800138002") != hub.profile_id


def test_given_phones_typed_three_ways_then_they_are_one_person(memory_service: IdentityService) -> None:
    ids = {
        memory_service.process(make_event(("phone", raw), minutes=n)).profile_id
        for n, raw in enumerate(["+86 138-0013-8000", "13800138000", "008613800138000"])
    }

    assert len(ids) == 1
