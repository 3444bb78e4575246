"""The full path's transaction holds only what must change together: the profile(s), claims and merge
records. The timeline item (the processed marker) follows it when profile.changed is the event's only
out-event, and an order is claimed before it by a plain conditional put."""

from __future__ import annotations

from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository, order_key, profile_pk, timeline_sk
from huiliu.identity.service import IdentityService
from huiliu.storage.dynamo import CallStats

from tests.unit.identity.identity_helpers import TENANT, make_event


def _crash(*_: Any, **__: Any) -> None:
    raise RuntimeError("the function timed out")


def _timeline(repo: IdentityRepository, profile_id: str, event: Any) -> Any:
    return repo.get(
        profile_pk(TENANT, profile_id), timeline_sk(event.timestamp.isoformat(), event.message_id)
    )


def test_given_a_new_person_then_the_transaction_holds_profile_and_claims_and_the_timeline_follows(
    service: IdentityService, repo: IdentityRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    real = repo.transact
    monkeypatch.setattr(repo, "transact", lambda ops: (sent.append(len(ops)), real(ops)))
    repo.stats = CallStats()

    outcome = service.process(make_event(("phone", "13800138000"), ("email", "li@x.cn"), kind="identify"))

    assert outcome.status == "processed"
    assert sent == [3]  # the profile and two claims
    assert repo.stats.by_op == {"BatchGetItem": 1, "TransactWriteItems": 1, "PutItem": 1}


def test_given_a_crash_before_a_new_persons_timeline_when_redelivered_then_created_once(
    service: IdentityService, repo: IdentityRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    signup = make_event(("phone", "13800138000"), ("email", "li@x.cn"), kind="identify", traits={"n": 1})
    with monkeypatch.context() as patch:
        patch.setattr(repo, "write_timeline", _crash)
        with pytest.raises(RuntimeError):
            service.process(signup)

    again = service.process(signup)

    # a duplicate: the profile counted it once; its timeline item is written now and
    # profile.changed republished, still saying the event created the profile (journeys use it)
    assert again.status == "duplicate"
    [changed] = again.events
    assert changed.detail["created"] is True
    profile = repo.get_profile(TENANT, again.profile_id or "")
    assert profile is not None
    assert profile.computed["event_count"] == 1
    assert "out" in _timeline(repo, profile.profile_id, signup)
    assert service.process(signup).status == "duplicate"


def test_given_a_merge_then_its_timeline_item_stays_in_the_transaction(
    service: IdentityService, repo: IdentityRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.process(make_event(("email", "li@x.cn")))
    service.process(make_event(("phone", "13800138000"), minutes=1))
    monkeypatch.setattr(repo, "write_timeline", _crash)  # never called: merged events are not lost

    merged = service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=2))

    assert merged.merged
    assert [e.detail_type for e in merged.events] == ["profile.changed", "profile.merged"]


def test_given_a_new_customers_first_order_then_claimed_outside_the_transaction_and_counted_once(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock
) -> None:
    props = {"order_id": "o-9", "revenue": 10}
    order = make_event(("shopify_customer_id", "7001"), name="Order Completed", properties=props)
    sent: list[int] = []
    real = repo.transact
    repo.transact = lambda ops: (sent.append(len(ops)), real(ops))  # type: ignore[method-assign]

    first = service.process(order)
    again = service.process(order)
    paid = service.process(
        make_event(("shopify_customer_id", "7001"), name="Order Paid", properties=props, minutes=1)
    )

    assert sent == [2]  # the profile and its claim; the order marker and timeline item outside
    assert first.status == "processed"
    assert again.status == "duplicate"
    assert paid.status == "processed"
    held = repo.get(*order_key(TENANT, "o-9", "COUNTED"))
    assert held is not None
    assert held["profile_id"] == first.profile_id
    profile = repo.get_profile(TENANT, first.profile_id or "")
    assert profile is not None
    assert profile.computed["order_count"] == 1
