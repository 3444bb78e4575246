"""The known-person path: one eventual read, no transaction — and still exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository, marker_pk
from huiliu.identity.service import IdentityService

from tests.unit.identity.identity_helpers import TENANT, make_event


def _profile(repo: IdentityRepository, profile_id: str) -> Any:
    found = repo.get_profile(TENANT, profile_id)
    assert found is not None
    return found


def test_given_a_crash_between_the_profile_write_and_the_marker_when_redelivered_then_applied_once(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a known person, and a process that stops right after the profile write
    first = service.process(make_event(("phone", "13800138000"), at=clock.now()))
    assert first.profile_id
    view = make_event(("phone", "13800138000"), name="Product Viewed", at=clock.now() + timedelta(seconds=5))

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("the function timed out")

    with monkeypatch.context() as patch:
        patch.setattr(repo, "batch_write", crash)
        with pytest.raises(RuntimeError):
            service.process(view)
    assert _profile(repo, first.profile_id).computed["event_count"] == 2  # the profile write landed
    assert repo.get(marker_pk(TENANT, "segment", view.message_id), "PROCESSED") is None

    # When SQS redelivers the event
    again = service.process(view)

    # Then it is a duplicate: counted once, its marker and timeline item written now, and
    # profile.changed republished under the id the first attempt would have used
    assert again.status == "duplicate"
    assert _profile(repo, first.profile_id).computed["event_count"] == 2
    assert repo.get(marker_pk(TENANT, "segment", view.message_id), "PROCESSED") is not None
    [changed] = again.events
    assert changed.detail_type == "profile.changed"
    assert service.process(view).status == "duplicate"


def test_given_an_old_event_replayed_when_its_profile_has_moved_on_then_the_marker_makes_it_a_duplicate(
    service: IdentityService, repo: IdentityRepository, clock: ManualClock
) -> None:
    # Given an event applied long ago, and more events since than the applied-event ring holds
    old = make_event(("phone", "13800138000"), name="Order Viewed", at=clock.now())
    service.process(old)
    for n in range(12):
        service.process(make_event(("phone", "13800138000"), at=clock.now() + timedelta(minutes=n + 1)))
        clock.advance(timedelta(minutes=1))
    profile_id = service.process(old).profile_id
    assert profile_id

    # When it is replayed (received before the ring's start)
    outcome = service.process(old)

    # Then the processed marker says it was applied
    assert outcome.status == "duplicate"
    assert _profile(repo, profile_id).computed["event_count"] == 13
