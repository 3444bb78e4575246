"""A profile's size is bounded, and sums stay numbers DynamoDB can hold (issue 8, item 1).

Before: traits accumulated without bound until the profile (or its merge record) could no longer
be written; two orders of 1e38 made a 39-digit revenue_total that boto3 refused; "NaN" as revenue
made revenue_total NaN. Each of these dead-lettered every later event of the person.
"""

from __future__ import annotations

from huiliu.identity.profile import MAX_SUM, MAX_TRAIT_BYTES
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService

from tests.unit.identity.identity_helpers import TENANT, make_event

EMAIL = ("email", "big@example.com")


def _profile(service: IdentityService, repo: IdentityRepository, profile_id: str):  # type: ignore[no-untyped-def]
    profile = repo.get_profile(TENANT, profile_id)
    assert profile is not None
    return profile


def test_traits_stop_growing_at_the_budget_and_events_keep_landing(
    service: IdentityService, repo: IdentityRepository
) -> None:
    outcomes = [
        service.process(make_event(EMAIL, kind="identify", traits={f"t{i}": "x" * 1000}, minutes=i))
        for i in range(60)
    ]
    assert {o.status for o in outcomes} == {"processed"}
    profile = _profile(service, repo, outcomes[-1].profile_id)
    assert profile.trait_bytes() <= MAX_TRAIT_BYTES
    assert "t0" in profile.traits  # the first ones stay
    assert "t59" not in profile.traits
    assert profile.computed["event_count"] == 60  # every event still counted
    assert len(repo.timeline(TENANT, profile.profile_id, limit=100)) == 60
    # a value that fits still replaces an existing one
    service.process(make_event(EMAIL, kind="identify", traits={"t0": "short"}, minutes=100))
    assert _profile(service, repo, profile.profile_id).traits["t0"] == "short"


def test_one_trait_over_the_budget_is_not_stored_but_the_rest_is(
    service: IdentityService, repo: IdentityRepository
) -> None:
    traits = {"name": "Li", "huge": "汉" * (MAX_TRAIT_BYTES // 3 + 1)}
    outcome = service.process(make_event(EMAIL, kind="identify", traits=traits))
    profile = _profile(service, repo, outcome.profile_id)
    assert profile.traits["name"] == "Li"
    assert "huge" not in profile.traits


def test_merging_two_full_profiles_stays_within_the_budget(
    service: IdentityService, repo: IdentityRepository
) -> None:
    half = MAX_TRAIT_BYTES // 1000
    for i in range(half + 5):
        service.process(
            make_event(("email", "a@x.cn"), kind="identify", traits={f"a{i}": "x" * 900}, minutes=i)
        )
        service.process(make_event(("phone", "13800138000"), kind="identify", traits={f"b{i}": "y" * 900}))
    merged = service.process(make_event(("email", "a@x.cn"), ("phone", "13800138000"), minutes=500))
    assert merged.status == "processed"
    assert _profile(service, repo, merged.profile_id).trait_bytes() <= MAX_TRAIT_BYTES


def test_revenue_sums_stay_storable(service: IdentityService, repo: IdentityRepository) -> None:
    for i, revenue in enumerate([1e38, 1e38, "NaN", 9e125, 9e125]):
        outcome = service.process(
            make_event(EMAIL, name="Order Completed", properties={"order_id": f"o{i}", "revenue": revenue})
        )
        assert outcome.status == "processed"
    computed = _profile(service, repo, outcome.profile_id).computed
    assert computed["order_count"] == 5
    assert computed["revenue_total"] == MAX_SUM  # saturated, not inf / null / a 39-digit int
