"""Live editing: a new version leaves running enrollments on theirs, or migrates them when the
author asks and every wait step maps — refused with the path and the reason otherwise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from huiliu.journeys.admin import InvalidDefinition
from huiliu.journeys.examples import example_documents

from tests.functions.journeys.engine_helpers import Engine, make_engine, profile_changed
from tests.unit.journeys.journey_helpers import TENANT


@pytest.fixture
def engine(deployed: Any) -> Engine:
    return make_engine(deployed.tables["JourneysTable"])


def signup() -> dict[str, Any]:
    return next(d for d in example_documents() if d["id"] == "signup-coupon")


def v2_steps() -> list[dict[str, Any]]:
    """Version 2: the wait renamed, a bigger coupon, no tag step."""
    return [
        {"id": "wait-days", "type": "wait", "duration": "2d"},
        {"id": "ordered", "type": "branch", "did_event": "Order Completed", "then": "end", "else": "coupon"},
        {
            "id": "coupon",
            "type": "send",
            "channel": "sms",
            "template": "coupon-sms",
            "variables": {"coupon": "WELCOME20"},
        },
    ]


def problems(excinfo: Any) -> dict[str, str]:
    return {p["path"]: p["reason"] for p in excinfo.value.problems}


def test_without_migrate_running_enrollments_stay_on_their_version(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-m00001", 1, event="Signed Up", created=True))
    assert engine.admin.apply(TENANT, {**signup(), "steps": v2_steps()})["version"] == 2
    engine.tick(timedelta(days=3))
    [sms] = engine.requested()
    assert sms["variables"]["coupon"] == "WELCOME10"
    assert sms["journey_version"] == 1
    assert len(engine.ingested()) == 1  # version 1's tag step ran


def test_migrate_moves_a_waiting_enrollment_onto_the_new_version_at_its_next_step(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-m00002", 1, event="Signed Up", created=True))
    out = engine.admin.apply(
        TENANT, {**signup(), "steps": v2_steps(), "migrate": {"steps": {"wait-3d": "wait-days"}}}
    )
    assert out["version"] == 2
    assert out["migrates"] == {"version": 1, "steps": {"wait-3d": "wait-days"}}
    # The wait in progress keeps its deadline (3 days from entry), not the new duration.
    assert engine.tick(timedelta(days=2, hours=12)).stepped == 0
    assert engine.tick(timedelta(hours=12)).stepped == 1
    [sms] = engine.requested()
    assert sms["variables"]["coupon"] == "WELCOME20"
    assert sms["journey_version"] == 2
    assert engine.ingested() == []  # version 2 has no tag step
    [e] = engine.repo.enrollments_of(TENANT, "p-m00002")
    assert (e.journey_version, e.status) == (2, "completed")
    migrated = [line for line in e.log if line["what"] == "migrated"]
    assert migrated == [
        {
            "at": migrated[0]["at"],
            "step": "wait-days",
            "what": "migrated",
            "from_version": 1,
            "to_version": 2,
            "from_step": "wait-3d",
        }
    ]
    # A new signup enters version 2 directly.
    engine.send("profile.changed", profile_changed("p-m00003", 1, event="Signed Up", created=True))
    assert engine.repo.enrollments_of(TENANT, "p-m00003")[0].journey_version == 2


def test_a_migrated_enrollment_exits_on_the_new_versions_exit_conditions(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-m00004", 1, event="Signed Up", created=True))
    engine.admin.apply(
        TENANT,
        {**signup(), "exit": [{"event": "Unsubscribed"}], "migrate": {"steps": {}}},  # same steps
    )
    engine.clock.advance(timedelta(hours=1))
    engine.send("profile.changed", profile_changed("p-m00004", 2, event="Unsubscribed"))
    [e] = engine.repo.enrollments_of(TENANT, "p-m00004")
    assert (e.journey_version, e.exit_reason) == (2, "event:Unsubscribed")


def test_migrations_chain_across_versions(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-m00005", 1, event="Signed Up", created=True))
    engine.admin.apply(
        TENANT, {**signup(), "steps": v2_steps(), "migrate": {"steps": {"wait-3d": "wait-days"}}}
    )
    v3 = [{**s, "id": "pause"} if s["id"] == "wait-days" else s for s in v2_steps()]
    engine.admin.apply(TENANT, {**signup(), "steps": v3, "migrate": {"steps": {"wait-days": "pause"}}})
    engine.tick(timedelta(days=3))
    [e] = engine.repo.enrollments_of(TENANT, "p-m00005")
    assert e.journey_version == 3
    assert [(x["from_version"], x["to_version"]) for x in e.log if x["what"] == "migrated"] == [
        (1, 2),
        (2, 3),
    ]


def test_a_wait_step_that_does_not_map_is_refused_with_its_path_and_nothing_is_published(
    engine: Engine,
) -> None:
    with pytest.raises(InvalidDefinition) as excinfo:
        engine.admin.apply(TENANT, {**signup(), "steps": v2_steps(), "migrate": {"steps": {}}})
    assert problems(excinfo) == {
        "migrate.steps.wait-3d": "wait step 'wait-3d' of version 1 has no step of that id in the new "
        "version: map it to one of its wait steps"
    }
    with pytest.raises(InvalidDefinition) as excinfo:
        engine.admin.apply(
            TENANT, {**signup(), "steps": v2_steps(), "migrate": {"steps": {"wait-3d": "coupon", "tag": "x"}}}
        )
    assert problems(excinfo) == {
        "migrate.steps.tag": "only wait steps hold running enrollments: map wait steps",
        "migrate.steps.wait-3d": "maps to 'coupon', a send step: a waiting enrollment needs a wait",
    }
    event_wait = [
        {"id": "wait-days", "type": "wait", "event": {"event": "Order Completed"}, "timeout": "3d"},
        *v2_steps()[1:],
    ]
    with pytest.raises(InvalidDefinition) as excinfo:
        engine.admin.apply(
            TENANT, {**signup(), "steps": event_wait, "migrate": {"steps": {"wait-3d": "wait-days"}}}
        )
    assert problems(excinfo) == {
        "migrate.steps.wait-3d": "a timed wait cannot become an event wait ('wait-days')"
    }
    with pytest.raises(InvalidDefinition) as excinfo:
        engine.admin.apply(TENANT, {**signup(), "id": "brand-new", "migrate": {}})
    assert problems(excinfo) == {"migrate": "nothing to migrate: no version published"}
    assert engine.admin.show(TENANT, "signup-coupon")["active_version"] == 1
    assert [v["version"] for v in engine.admin.show(TENANT, "signup-coupon")["versions"]] == [1]


def test_the_admin_route_answers_400_with_the_migration_problems(engine: Engine) -> None:
    from huiliu import stage
    from huiliu.adminapi.wiring import STAGE, AdminServices

    from tests.functions.journeys.test_journeys_admin import _app, _call

    stage.configure(STAGE, service=AdminServices(journeys=engine.admin))
    try:
        status, body = _call(
            _app(),
            "POST",
            "/admin/journeys",
            {**signup(), "steps": v2_steps(), "migrate": {"steps": {"wait-3d": "ghost"}}},
        )
    finally:
        stage.configure(STAGE)
    assert status == 400
    assert body["code"] == "invalid_journey"
    assert body["problems"] == [
        {"path": "migrate.steps.wait-3d", "reason": "no step 'ghost' in the new version"}
    ]


def test_the_cli_builds_the_migration_request() -> None:
    import argparse

    from huiliu_infra.cli_journeys import _migrate_request
    from huiliu_infra.cli_profiles import CliError

    assert _migrate_request(argparse.Namespace(migrate=False, map=None)) is None
    assert _migrate_request(argparse.Namespace(migrate=True, map=None)) == {"steps": {}}
    assert _migrate_request(argparse.Namespace(migrate=False, map=["wait-3d=wait-days"])) == {
        "steps": {"wait-3d": "wait-days"}
    }
    with pytest.raises(CliError):
        _migrate_request(argparse.Namespace(migrate=False, map=["wait-3d"]))
