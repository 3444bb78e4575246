"""The known-person path: one eventual read, no transaction — and still exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.identity.admin import ProfileAdmin
from huiliu.identity.profile import Profile
from huiliu.identity.repository import (
    IdentityRepository,
    MemoryIdentityRepository,
    marker_pk,
    profile_pk,
    timeline_sk,
)
from huiliu.identity.service import IdentityService
from huiliu.models import Identifier

from tests.unit.identity.identity_helpers import TENANT, make_event


def _profile(repo: IdentityRepository, profile_id: str) -> Any:
    found = repo.get_profile(TENANT, profile_id)
    assert found is not None
    return found


def _timeline_item(repo: IdentityRepository, profile_id: str, event: Any) -> Any:
    sk = timeline_sk(event.timestamp.isoformat(), event.message_id)
    return repo.get(profile_pk(TENANT, profile_id), sk)


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
        patch.setattr(repo, "write_timeline", crash)
        with pytest.raises(RuntimeError):
            service.process(view)
    assert _profile(repo, first.profile_id).computed["event_count"] == 2  # the profile write landed
    assert _timeline_item(repo, first.profile_id, view) is None

    # When SQS redelivers the event
    again = service.process(view)

    # Then it is a duplicate: counted once, its timeline item (the marker) written now, and
    # profile.changed republished under the id the first attempt would have used
    assert again.status == "duplicate"
    assert _profile(repo, first.profile_id).computed["event_count"] == 2
    assert "out" in _timeline_item(repo, first.profile_id, view)
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


# -- the timeline item is the processed marker: where a redelivery looks for it ----------------------------


def _memory_profile(repo: MemoryIdentityRepository, profile_id: str) -> Profile:
    found = repo.get_profile(TENANT, profile_id)
    assert found is not None
    return found


def test_given_an_event_on_a_profile_merged_away_since_when_replayed_then_found_under_it(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    # Given an event applied to a profile that a later link merged into an older one
    memory_service.process(make_event(("email", "li@x.cn"), minutes=0))
    viewed = make_event(("phone", "13800138000"), name="Viewed", minutes=1)
    absorbed = memory_service.process(viewed).profile_id
    merged = memory_service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=2))
    assert merged.merged == [absorbed]
    survivor = _memory_profile(memory_repo, merged.profile_id or "")
    count = survivor.computed["event_count"]

    # When it is replayed, through a warm and a cold container
    again = memory_service.process(viewed)
    cold = IdentityService(memory_repo, clock=memory_service.clock, backoff=lambda a: None).process(viewed)

    # Then both find its timeline item under the absorbed profile: applied once
    assert again.status == cold.status == "duplicate"
    assert again.profile_id == absorbed
    assert _memory_profile(memory_repo, survivor.profile_id).computed["event_count"] == count


def test_given_an_event_applied_while_merged_when_redelivered_after_an_unmerge_then_a_duplicate(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository, clock: ManualClock
) -> None:
    # Given a survivor that absorbed the phone's profile, and an event by phone applied while merged
    memory_service.process(make_event(("email", "li@x.cn"), minutes=0))
    restored = memory_service.process(make_event(("phone", "13800138000"), minutes=1)).profile_id
    survivor = memory_service.process(
        make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=2)
    ).profile_id
    late = make_event(("phone", "13800138000"), name="Viewed", minutes=3)
    assert memory_service.process(late).profile_id == survivor
    # ... and an admin who undoes the merge
    clock.advance(timedelta(hours=1))
    ProfileAdmin(memory_repo, clock=clock).unmerge(TENANT, survivor or "", absorbed_id=restored)
    memory_service.forget(TENANT, [Identifier(type="phone", value="+8613800138000")])
    counts = {p: _memory_profile(memory_repo, p or "").computed["event_count"] for p in (survivor, restored)}

    # When the event is redelivered: its phone now leads to the restored profile
    again = memory_service.process(late)

    # Then its timeline item under the survivor (the restored one's keep_apart) makes it a duplicate
    assert again.status == "duplicate"
    assert again.profile_id == survivor
    assert {p: _memory_profile(memory_repo, p or "").computed["event_count"] for p in counts} == counts


def test_given_an_event_processed_before_the_timeline_carried_the_marker_when_replayed_then_a_duplicate(
    memory_service: IdentityService, memory_repo: MemoryIdentityRepository
) -> None:
    # Given an event stored the old way: a processed marker item, a timeline item without out-events
    memory_service.process(make_event(("phone", "13800138000"), minutes=0))
    old = make_event(("phone", "13800138000"), name="Viewed", minutes=1)
    done = memory_service.process(old)
    (key,) = [k for k, i in memory_repo.items.items() if i.get("message_id") == old.message_id]
    item = memory_repo.items[key]
    memory_repo.items[(marker_pk(TENANT, "segment", old.message_id), "PROCESSED")] = {
        "pk": marker_pk(TENANT, "segment", old.message_id),
        "sk": "PROCESSED",
        "profile_id": done.profile_id,
        "out": item.pop("out"),
    }
    profile = _memory_profile(memory_repo, done.profile_id or "")

    # When it is replayed
    again = memory_service.process(old)

    # Then the old marker says so, and the same out-events are published again
    assert again.status == "duplicate"
    assert [e.detail["event_id"] for e in again.events] == [e.detail["event_id"] for e in done.events]
    assert _memory_profile(memory_repo, profile.profile_id).version == profile.version
