"""Tick commits in PartiQL batches (BatchExecuteStatement, 25 statements per request): each statement
is the enrollment's conditional write on its revision, evaluated on its own. A lost race inside a
batch fails that statement only — its step is not run twice, and the batch's other statements commit."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from huiliu.journeys.repository import STATEMENTS_PER_BATCH, JourneysRepository
from huiliu.journeys.service import Committer

from tests.functions.journeys.engine_helpers import Engine, make_engine, profile_changed
from tests.unit.journeys.journey_helpers import TENANT

pytestmark = pytest.mark.usefixtures("deployed")


@pytest.fixture
def engine(deployed: Any) -> Engine:
    return make_engine(deployed.tables["JourneysTable"])


def _due(engine: Engine, people: list[str]) -> None:
    for pid in people:
        engine.send("profile.changed", profile_changed(pid, 1, event="Signed Up", created=True))
    engine.clock.advance(timedelta(days=3))


def test_a_lost_race_inside_a_batch_fails_only_its_statement(engine: Engine) -> None:
    people = [f"p-3000{i:02d}" for i in range(3)]
    _due(engine, people)
    repo = JourneysRepository(engine.repo.table_name)
    stale, moved, fresh = (repo.enrollments_of(TENANT, pid)[0] for pid in people)
    assert moved.rev == stale.rev == fresh.rev == 1
    # Another writer moves the middle one (people[1]) on first.
    moved.rev = 2
    assert repo.save_enrollments([(copy.deepcopy(moved), 1, None)]) == [True]
    for e in (moved, stale, fresh):
        e.step_id = "after"
        e.rev = 2
    calls = repo.stats.by_op.get("BatchExecuteStatement", 0)
    assert repo.save_enrollments([(stale, 1, None), (moved, 1, None), (fresh, 1, None)]) == [
        True,
        False,
        True,
    ]
    assert repo.stats.by_op["BatchExecuteStatement"] == calls + 1  # one request for the three
    after = {pid: repo.enrollments_of(TENANT, pid)[0] for pid in people}
    assert after[people[0]].step_id == "after"
    assert after[people[2]].step_id == "after"
    assert after[people[1]].step_id != "after"  # the lost race wrote nothing


def test_a_commit_removes_the_attributes_the_new_state_no_longer_has(engine: Engine) -> None:
    """The UPDATE statement replaces the whole enrollment: the wait's next_at and its due-index entry
    go when the enrollment finishes (a stale index entry would be read again by every tick)."""
    _due(engine, ["p-300100"])
    report = engine.ticker.tick(engine.clock.now())
    assert report.stepped == 1
    item = engine.repo.get(f"T#{TENANT}#P#p-300100", "E#signup-coupon#once")
    assert item is not None
    assert item["status"] == "completed"
    assert item["rev"] == 2
    assert "next_at" not in item
    assert "due_shard" not in item
    assert "wait" not in item
    assert engine.ticker.tick(engine.clock.now() + timedelta(minutes=1)).due == 0


def test_a_step_another_tick_committed_inside_a_batch_is_not_run_twice_nor_blocks_the_batch(
    engine: Engine,
) -> None:
    n = STATEMENTS_PER_BATCH + 5  # one page, two requests: 25 + 5
    people = [f"p-3002{i:02d}" for i in range(n)]
    engine.repo.shards = 1  # every wait in one due shard: the tick commits them as one page
    _due(engine, people)
    now = engine.clock.now()
    tick = make_engine(engine.repo.table_name, apply_examples=False, workers=1)
    tick.repo.shards = 1
    other = Committer(JourneysRepository(engine.repo.table_name), tick.bus)
    real_commit = tick.ticker.committer.commit
    raced: list[str] = []

    def overlapped(pending: Any, at: Any, correlation: Any = None) -> Any:
        assert len(pending) == n
        # Between this tick's publish and its commit, another invocation commits the same step of
        # one enrollment in the middle of the first batch (same transition, same action ids).
        victim = pending[len(pending) // 3]
        raced.append(victim.transition.enrollment.enrollment_id)
        assert other.commit([copy.deepcopy(victim)], at).committed == 1
        return real_commit(pending, at, correlation)

    tick.ticker.committer.commit = overlapped  # type: ignore[method-assign]
    calls = tick.repo.stats.by_op.get("BatchExecuteStatement", 0)
    report = tick.ticker.tick(now)
    assert len(raced) == 1
    assert report.due == n
    assert report.conflicts == 1  # only the raced statement failed ...
    assert report.stepped == n - 1  # ... every other statement of its batch committed
    assert tick.repo.stats.by_op["BatchExecuteStatement"] - calls == 2  # ceil(30 / 25) requests
    # Exactly once: every enrollment stepped once (rev 2), one action id per (enrollment, step) even
    # for the raced one (both invocations published the same ids), counted once in the funnel.
    published: dict[tuple[str, str], set[str]] = {}
    for detail in tick.requested():
        published.setdefault((detail["enrollment_id"], detail["step_id"]), set()).add(
            detail["idempotency_key"]
        )
    assert len(published) == n
    assert all(len(keys) == 1 for keys in published.values())
    raced_copies = [d for d in tick.requested() if d["enrollment_id"] == raced[0]]
    assert len(raced_copies) == 2  # republished under the same key: notify sends once
    for pid in people:
        [e] = engine.repo.enrollments_of(TENANT, pid)
        assert e.status == "completed"
        assert e.rev == 2
        assert [line["step"] for line in e.log if line["what"].startswith("action ")] == ["coupon", "tag"]
    funnel = engine.admin.funnel(TENANT, "signup-coupon")
    assert funnel["messages_requested"] == n
    assert funnel["completed"] == n
    assert tick.ticker.tick(now + timedelta(minutes=1)).due == 0


def test_throttled_statements_are_sent_again_alone(engine: Engine, monkeypatch: Any) -> None:
    people = [f"p-3003{i:02d}" for i in range(3)]
    _due(engine, people)
    repo = JourneysRepository(engine.repo.table_name)
    monkeypatch.setattr("huiliu.storage.dynamo.BATCH_BACKOFF_SECONDS", 0.0)
    enrollments = [repo.enrollments_of(TENANT, pid)[0] for pid in people]
    for e in enrollments:
        e.step_id = "after"
        e.rev = 2
    real = repo.client.batch_execute_statement
    sent: list[int] = []

    def throttle_the_second(**kwargs: Any) -> Any:
        statements = kwargs["Statements"]
        sent.append(len(statements))
        if len(sent) > 1:
            return real(**kwargs)
        answer = real(**{**kwargs, "Statements": [statements[0], statements[2]]})
        first, third = answer["Responses"]
        throttled = {"Error": {"Code": "ThrottlingError", "Message": "slow down"}}
        return {**answer, "Responses": [first, throttled, third]}

    class Client:
        def __getattr__(self, name: str) -> Any:
            return (
                throttle_the_second
                if name == "batch_execute_statement"
                else getattr(engine.repo.client, name)
            )

    repo._client = Client()
    assert repo.save_enrollments([(e, 1, None) for e in enrollments]) == [True, True, True]
    assert sent == [3, 1]
    assert all(repo.enrollments_of(TENANT, pid)[0].step_id == "after" for pid in people)
