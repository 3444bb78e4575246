"""A journey's tag / trait actions are canonical events from the internal source "journeys":
identity folds them into the profile like any other event (journeys never writes identity's table)."""

from __future__ import annotations

from datetime import timedelta

from huiliu.identity.profile import Profile, apply_event
from huiliu.identity.rules import IdentityRules
from huiliu.journeys.interpreter import Action, Enrollment, ProfileView
from huiliu.journeys.service import action_event
from huiliu.models import CanonicalEvent

from tests.unit.journeys.journey_helpers import T0, TENANT


def _event(action: Action) -> CanonicalEvent:
    e = Enrollment(TENANT, "p1", "j", 1, "once", "enr-1", entered_at="x")
    view = ProfileView(
        "p1", identifiers=[{"type": "phone", "value": "+8613800138000"}, {"type": "user_id", "value": "u1"}]
    )
    out = action_event(action, e, view, T0 + timedelta(days=1), "corr-1")
    assert out.detail_type == "event.ingested"
    assert out.source == "huiliu.journeys"
    return CanonicalEvent.model_validate(out.detail)


def test_tag_actions_add_and_remove_tags_on_the_profile_through_identity() -> None:
    profile = Profile("p1", TENANT, created_at="2026-01-01T00:00:00Z", tags=["old", "keep"])
    add = _event(Action("tag", "t1", "k1", {"add": ["coupon-sent"], "remove": ["old"]}))
    assert add.source.connector == "journeys"
    assert add.message_id == "journeys-k1"
    assert [(i.type, i.value) for i in add.identifiers] == [("user_id", "u1")]
    changes = apply_event(profile, add, IdentityRules())
    assert profile.tags == ["coupon-sent", "keep"]
    assert changes.tags_added == ["coupon-sent"]
    assert changes.tags_removed == ["old"]
    assert "tags_remove" not in profile.traits


def test_set_trait_actions_become_traits() -> None:
    profile = Profile("p1", TENANT, created_at="2026-01-01T00:00:00Z")
    event = _event(Action("set_trait", "s1", "k2", {"traits": {"winback_offer": "B10"}}))
    apply_event(profile, event, IdentityRules())
    assert profile.traits["winback_offer"] == "B10"
