"""Orders of a known person without a transaction: the order is claimed for the event (a put
conditioned on absence, no read) before the profile write, and counted once whatever happens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.errors import ConditionFailed
from huiliu.identity.repository import IdentityRepository, order_key
from huiliu.identity.service import IdentityService
from huiliu.storage.dynamo import CallStats

from tests.unit.identity.identity_helpers import TENANT, make_event

PHONE = ("phone", "13800138000")


def _order(clock: ManualClock, name: str = "Order Completed", minutes: int = 1, **props: Any) -> Any:
    props = {"order_id": "o-1", "revenue": 99.5, "currency": "CNY", **props}
    return make_event(PHONE, name=name, at=clock.now() + timedelta(minutes=minutes), properties=props)


def _computed(repo: IdentityRepository, profile_id: str | None) -> dict[str, Any]:
    profile = repo.get_profile(TENANT, profile_id or "")
    assert profile is not None
    return profile.computed


def test_given_a_known_person_when_an_order_arrives_then_no_transaction_and_counted(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock
) -> None:
    known = service.process(make_event(PHONE, at=clock.now()))
    repo.stats = CallStats()

    outcome = service.process(_order(clock))

    # the profile read; the order claimed (no read), the profile, the timeline item
    assert outcome.status == "processed"
    assert repo.stats.by_op == {"BatchGetItem": 1, "PutItem": 3}
    assert _computed(repo, known.profile_id)["order_count"] == 1
    held = repo.get(*order_key(TENANT, "o-1", "COUNTED"))
    assert held is not None
    assert held["profile_id"] == known.profile_id


def test_given_an_order_counted_when_its_paid_event_arrives_then_not_counted_again(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock
) -> None:
    known = service.process(make_event(PHONE, at=clock.now()))
    service.process(_order(clock))
    repo.stats = CallStats()

    paid = service.process(_order(clock, "Order Paid", minutes=2))

    assert paid.status == "processed"
    assert "TransactWriteItems" not in repo.stats.by_op
    computed = _computed(repo, known.profile_id)
    assert computed["order_count"] == 1
    assert computed["revenue_total"] == 99.5
    assert computed["events"]["Order Paid"]["count"] == 1


def test_given_a_crash_after_the_claim_when_redelivered_then_the_order_is_counted_once(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = service.process(make_event(PHONE, at=clock.now()))
    order = _order(clock)

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("the function timed out")

    with monkeypatch.context() as patch:
        patch.setattr(repo, "put", crash)  # the profile write never happens
        with pytest.raises(RuntimeError):
            service.process(order)
    assert repo.get(*order_key(TENANT, "o-1", "COUNTED")) is not None  # claimed
    assert "order_count" not in _computed(repo, known.profile_id)

    again = service.process(order)  # the claim is this event's own: it counts
    other = service.process(_order(clock, "Order Paid", minutes=2))  # another event of it does not
    service.process(order)  # and a second redelivery is a duplicate

    assert again.status == "processed"
    assert other.status == "processed"
    assert _computed(repo, known.profile_id)["order_count"] == 1
    assert _computed(repo, known.profile_id)["event_count"] == 3


def test_given_a_lost_race_after_the_claim_when_retried_on_the_full_path_then_counted_once(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = service.process(make_event(PHONE, at=clock.now()))
    real_put = repo.put
    lost: list[str] = []

    def racing_put(item: Any, **kwargs: Any) -> None:
        if item.get("sk") == "PROFILE" and not lost:
            lost.append("once")
            raise ConditionFailed("version moved")  # another event wrote the profile first
        real_put(item, **kwargs)

    monkeypatch.setattr(repo, "put", racing_put)
    outcome = service.process(_order(clock))

    assert lost
    assert outcome.status == "processed"
    assert outcome.attempts == 2
    assert _computed(repo, known.profile_id)["order_count"] == 1


def test_given_an_order_marker_from_before_events_named_when_its_event_is_replayed_then_not_counted(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock
) -> None:
    known = service.process(make_event(PHONE, at=clock.now()))
    pk, sk = order_key(TENANT, "o-1", "COUNTED")
    repo.put({"pk": pk, "sk": sk, "profile_id": known.profile_id})  # counted, by whom unknown

    service.process(_order(clock))

    assert "order_count" not in _computed(repo, known.profile_id)
