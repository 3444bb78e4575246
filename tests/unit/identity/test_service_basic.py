"""The simple cases on moto: a new person becomes claims + a profile; a known person is updated."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository, MemoryIdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import DetailType
from huiliu.storage.dynamo import CallStats

from tests.unit.identity.identity_helpers import TENANT, make_event


def _item(client: Any, pk: str, sk: str) -> dict[str, Any] | None:
    from huiliu.storage.dynamo import deserialize

    found = client.get_item(TableName="identity-test", Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
    return deserialize(found) if found else None


def test_given_a_new_person_when_their_first_event_arrives_then_claims_profile_and_timeline_exist(
    service: IdentityService, moto_tables: Any
) -> None:
    outcome = service.process(
        make_event(("phone", "+86 138-0013-8000"), ("email", "Li@Example.com"), traits={"name": "Li"})
    )

    pid = outcome.profile_id
    assert outcome.status == "processed"
    phone_claim = _item(moto_tables, f"T#{TENANT}#ID#phone#+8613800138000", "CLAIM")
    email_claim = _item(moto_tables, f"T#{TENANT}#ID#email#li@example.com", "CLAIM")
    assert phone_claim is not None
    assert phone_claim["profile_id"] == pid
    assert email_claim is not None
    assert email_claim["profile_id"] == pid
    profile = _item(moto_tables, f"T#{TENANT}#P#{pid}", "PROFILE")
    assert profile is not None
    assert profile["traits"] == {"name": "Li"}
    assert profile["version"] == 1
    assert {(i["type"], i["value"]) for i in profile["identifiers"]} == {
        ("phone", "+8613800138000"),
        ("email", "li@example.com"),
    }
    timeline = moto_tables.query(
        TableName="identity-test",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :tl)",
        ExpressionAttributeValues={":pk": {"S": f"T#{TENANT}#P#{pid}"}, ":tl": {"S": "TL#"}},
    )["Items"]
    assert len(timeline) == 1
    assert "ttl" in timeline[0]


def test_given_a_known_person_when_another_event_arrives_then_the_same_profile_is_updated(
    service: IdentityService, moto_tables: Any
) -> None:
    first = service.process(make_event(("phone", "13800138000"), traits={"name": "Li"}))

    second = service.process(make_event(("phone", "008613800138000"), traits={"city": "Hangzhou"}, minutes=5))

    assert second.profile_id == first.profile_id
    profile = _item(moto_tables, f"T#{TENANT}#P#{first.profile_id}", "PROFILE")
    assert profile is not None
    assert profile["traits"] == {"name": "Li", "city": "Hangzhou"}
    assert profile["version"] == 2


def test_given_a_processed_event_when_it_is_redelivered_then_nothing_changes_and_its_events_are_replayed(
    service: IdentityService, moto_tables: Any
) -> None:
    event = make_event(("email", "a@b.cn"), name="Signed Up")
    first = service.process(event)

    again = service.process(event)

    assert again.status == "duplicate"
    assert again.profile_id == first.profile_id
    assert [e.detail_type for e in again.events] == [e.detail_type for e in first.events]
    profile = _item(moto_tables, f"T#{TENANT}#P#{first.profile_id}", "PROFILE")
    assert profile is not None
    assert profile["version"] == 1


def test_given_a_processed_event_then_profile_changed_carries_changes_and_the_event_summary(
    service: IdentityService,
) -> None:
    outcome = service.process(
        make_event(("user_id", "u1"), name="Order Completed", properties={"order_id": "o1", "revenue": 99.5})
    )

    (changed,) = [e for e in outcome.events if e.detail_type == DetailType.PROFILE_CHANGED]
    assert changed.source == "huiliu.identity"
    assert changed.detail["tenant_id"] == TENANT
    assert changed.detail["profile_id"] == outcome.profile_id
    assert changed.detail["correlation_id"] == "corr-1"
    assert changed.detail["occurred_at"]
    assert changed.detail["event"]["name"] == "Order Completed"
    assert changed.detail["event"]["properties"]["order_id"] == "o1"
    assert changed.detail["changed"]["computed"]["order_count"] == 1
    assert changed.detail["changed"]["computed"]["revenue_total"] == 99.5


def test_given_a_known_person_when_an_event_arrives_then_one_eventual_read_and_no_transaction(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock
) -> None:
    service.process(make_event(("phone", "13800138000"), ("anonymous_id", "dev-1"), at=clock.now()))
    repo.stats = CallStats()

    outcome = service.process(
        make_event(("phone", "13800138000"), name="Product Viewed", at=clock.now() + timedelta(minutes=1))
    )

    # one read of the profile; the profile write conditioned on its version, then the timeline
    # item, which is also the processed marker (no TransactWriteItems: half the write units)
    assert outcome.status == "processed"
    assert repo.stats.by_op == {"BatchGetItem": 1, "PutItem": 2}


def test_given_a_claim_through_too_many_tombstones_then_a_clear_error_not_a_dead_profile(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    from huiliu.identity.profile import Profile
    from huiliu.identity.repository import claim_pk, profile_pk
    from huiliu.identity.service import MAX_TOMBSTONE_HOPS, TombstoneChainTooLong
    from huiliu.models import Identifier

    chain = [f"pt{n}" for n in range(MAX_TOMBSTONE_HOPS + 3)]
    for here, there in itertools.pairwise(chain):
        tomb = Profile(profile_id=here, tenant_id=TENANT, created_at="2026-01-01", merged_into=there)
        memory_repo.items[(profile_pk(TENANT, here), "PROFILE")] = {
            "pk": profile_pk(TENANT, here),
            "sk": "PROFILE",
            **tomb.to_dict(),
        }
    ident = Identifier(type="user_id", value="deep")
    memory_repo.items[(claim_pk(TENANT, ident), "CLAIM")] = {
        "pk": claim_pk(TENANT, ident),
        "sk": "CLAIM",
        "profile_id": chain[0],
        "type": "user_id",
        "value": "deep",
    }

    with pytest.raises(TombstoneChainTooLong):
        memory_service.process(make_event(("user_id", "deep")))
