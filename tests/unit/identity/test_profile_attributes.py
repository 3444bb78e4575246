"""Traits by event time, strategies, tags, consent and computed attributes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from huiliu.identity.repository import MemoryIdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.tenants import TenantSettings

from tests.unit.identity.identity_helpers import TENANT, make_event


def _profile(repo: MemoryIdentityRepository, pid: str | None):
    assert pid is not None
    found = repo.get_profile(TENANT, pid)
    assert found is not None
    return found


def test_given_a_newer_value_when_a_late_old_event_arrives_then_the_newer_value_survives(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    memory_service.process(make_event(("user_id", "u1"), traits={"city": "Shanghai"}, minutes=60))

    late = memory_service.process(
        make_event(("user_id", "u1"), traits={"city": "Beijing", "age": 30}, minutes=0)
    )

    profile = _profile(memory_repo, late.profile_id)
    assert profile.traits == {"city": "Shanghai", "age": 30}


def test_given_first_union_and_sum_strategies_then_each_trait_combines_by_its_rule(
    memory_repo: MemoryIdentityRepository, clock
) -> None:
    settings = TenantSettings(tenant_id=TENANT, identity_rules={"_traits": {"points": "sum"}})
    service = IdentityService(memory_repo, settings_for=lambda t: settings, clock=clock, salt="s")
    service.process(
        make_event(
            ("user_id", "u1"), traits={"signed_up_at": "B", "interests": ["tea"], "points": 5}, minutes=9
        )
    )
    out = service.process(
        make_event(("user_id", "u1"), traits={"signed_up_at": "A", "interests": ["golf", "tea"], "points": 7})
    )

    traits = _profile(memory_repo, out.profile_id).traits
    assert traits == {"signed_up_at": "A", "interests": ["golf", "tea"], "points": 12}


def test_given_a_wechat_unsubscribe_then_consent_per_channel_is_recorded(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    memory_service.process(make_event(("wechat_openid", "o1"), traits={"consent": {"email": True}}))

    out = memory_service.process(
        make_event(
            ("wechat_openid", "o1"), name="Unsubscribed", context={"consent": {"wechat": False}}, minutes=1
        )
    )

    consent = _profile(memory_repo, out.profile_id).consent
    assert {k: v["granted"] for k, v in consent.items()} == {"email": True, "wechat": False}


def test_given_tags_in_traits_then_the_profile_tags_are_their_union(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    memory_service.process(make_event(("user_id", "u1"), traits={"tags": ["vip"]}))
    out = memory_service.process(make_event(("user_id", "u1"), traits={"tags": ["new", "vip"]}, minutes=1))

    assert _profile(memory_repo, out.profile_id).tags == ["new", "vip"]


def test_given_order_events_then_an_order_counts_once_per_order_id_and_aggregates_follow(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    products = [{"product_id": "p1", "sku": "s1", "name": "Tea", "price": 50, "quantity": 2}]
    memory_service.process(
        make_event(
            ("user_id", "u1"),
            name="Order Completed",
            properties={"order_id": "o1", "revenue": 100, "currency": "CNY", "products": products},
        )
    )
    memory_service.process(
        make_event(
            ("user_id", "u1"), name="Order Paid", properties={"order_id": "o1", "total": 100}, minutes=1
        )
    )
    memory_service.process(
        make_event(
            ("user_id", "u1"), name="Order Completed", properties={"order_id": "o2", "total": 50}, minutes=2
        )
    )
    out = memory_service.process(
        make_event(
            ("user_id", "u1"), name="Order Refunded", properties={"order_id": "o2", "total": 50}, minutes=3
        )
    )

    c = _profile(memory_repo, out.profile_id).computed
    assert c["order_count"] == 2
    assert c["revenue_total"] == 150
    assert c["avg_order_value"] == 75
    assert c["refunded_total"] == 50
    assert c["net_revenue"] == 100
    assert c["products_bought"] == ["p1"]
    assert c["first_order_at"] < c["last_order_at"]
    assert c["events"]["Order Completed"]["count"] == 2
    assert c["events"]["Order Paid"]["count"] == 1


def test_given_a_tenant_retention_then_timeline_items_expire_after_it(
    memory_repo: MemoryIdentityRepository, clock
) -> None:
    settings = TenantSettings(tenant_id=TENANT, timeline_retention_days=30)
    service = IdentityService(memory_repo, settings_for=lambda t: settings, clock=clock, salt="s")

    out = service.process(make_event(("user_id", "u1")))

    (item,) = [i for (pk, sk), i in memory_repo.items.items() if sk.startswith("TL#")]
    assert item["profile_id"] == out.profile_id
    assert item["ttl"] == int(clock.now().timestamp()) + 30 * 86400


def test_given_orders_in_two_currencies_arriving_late_then_currency_follows_the_latest_order(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    def order(n: int, currency: str, minutes: int) -> Any:
        props = {"order_id": f"o{n}", "revenue": 10, "currency": currency}
        return make_event(("user_id", "u-cur"), name="Order Completed", properties=props, minutes=minutes)

    memory_service.process(order(1, "USD", 10))
    out = memory_service.process(order(2, "CNY", 5))  # older order, arrives late

    assert _profile(memory_repo, out.profile_id).computed["currency"] == "USD"


def test_given_a_merge_then_currency_follows_the_latest_order_of_either_profile(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository, clock: Any
) -> None:
    props = {"order_id": "o1", "revenue": 10, "currency": "CNY"}
    memory_service.process(
        make_event(("email", "c@x.cn"), name="Order Completed", properties=props, minutes=1)
    )
    clock.advance(timedelta(minutes=1))
    props = {"order_id": "o2", "revenue": 10, "currency": "USD"}
    memory_service.process(
        make_event(("phone", "13800138001"), name="Order Completed", properties=props, minutes=9)
    )

    out = memory_service.process(make_event(("email", "c@x.cn"), ("phone", "13800138001"), minutes=20))

    assert _profile(memory_repo, out.profile_id).computed["currency"] == "USD"
