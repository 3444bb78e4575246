"""What a tenant's journeys can react to (pure): built from every version, and the events it drops."""

from __future__ import annotations

from huiliu.journeys.definition import parse_definition
from huiliu.journeys.examples import example_documents
from huiliu.journeys.interest import Interest, head_interest, interest_of, union
from huiliu.journeys.interpreter import ProfileView


def journeys() -> dict[str, object]:
    return {d["id"]: parse_definition({**d, "version": 1}) for d in example_documents()}


def test_the_classics_interest() -> None:
    j = journeys()
    signup = interest_of(j["signup-coupon"])  # type: ignore[arg-type]
    assert signup.events == {"Signed Up", "Order Completed"}
    assert signup.seen == {"Order Completed"}  # did_event: the projection records when it was seen
    assert not signup.conditions
    assert not signup.created
    everything = union(interest_of(x) for x in j.values())  # type: ignore[arg-type]
    assert everything.events == {"Signed Up", "Order Completed", "Order Refunded"}
    assert everything.segments == {"dormant_90_days"}


def detail(name: str | None = None, **changed: object) -> dict[str, object]:
    return {"event": {"name": name} if name else None, "changed": changed}


def test_what_matters() -> None:
    interest = Interest(events=frozenset({"Order Completed"}))
    assert interest.matters(detail("Order Completed"))
    assert not interest.matters(detail("Product Viewed", computed={"event_count": 3}))
    assert not interest.matters(detail("Product Viewed", traits={"city": "上海"}, tags_added=["vip"]))
    assert not interest.matters(detail(None, identifiers_added=[{"type": "email", "value": "a@b.c"}]))
    assert interest.matters(detail(None, traits={"locale": "en-US"}))  # the message locale
    assert interest.matters(detail(None, unmerged="p2"))
    assert interest.matters({"event": None, "merged_from": ["p2"]})
    assert not interest.matters({"event": None, "created": True})
    assert Interest(created=True).matters({"event": None, "created": True})
    reads_profile = Interest(conditions=True)
    assert reads_profile.matters(detail("Product Viewed", computed={"event_count": 3}))
    assert reads_profile.matters(detail(None, tags_added=["vip"]))
    assert Interest(everything=True).matters(detail("Anything"))


def test_the_projection_keeps_only_what_is_read() -> None:
    view = ProfileView("p1", traits={"city": "上海", "locale": "zh-CN"}, tags=["vip"], computed={"n": 1})
    kept = Interest().projects(view)
    assert (kept.traits, kept.tags, kept.computed) == ({"locale": "zh-CN"}, [], {})
    full = ProfileView("p1", traits={"city": "上海"}, tags=["vip"], computed={"n": 1})
    assert Interest(conditions=True).projects(full).traits == {"city": "上海"}


def test_a_head_without_interest_is_unknown_unless_it_has_one_version() -> None:
    signup = journeys()["signup-coupon"]
    assert head_interest({"latest_version": 1}, signup) == interest_of(signup)  # type: ignore[arg-type]
    assert head_interest({"latest_version": 3}, signup).everything  # type: ignore[arg-type]
    stored = interest_of(signup).as_json()  # type: ignore[arg-type]
    assert head_interest({"latest_version": 3, "interest": stored}, None) == Interest.from_json(stored)
