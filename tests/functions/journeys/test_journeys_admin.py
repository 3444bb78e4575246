"""Journeys admin routes (mounted in the admin app) on moto: apply with path errors, nothing
half-published, lifecycle, funnel and why; the catalog reads notify's templates and segments' ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from huiliu import stage
from huiliu.adminapi.wiring import STAGE, AdminServices
from huiliu.journeys import admin_routes
from huiliu.journeys.admin import JourneyAdmin
from huiliu.journeys.catalog import build_catalog
from huiliu.journeys.examples import example_documents
from huiliu.journeys.repository import JourneysRepository
from huiliu.settings import get_settings
from huiliu.storage.dynamo import DynamoRepository
from huiliu_infra.cli_journeys import _problems, format_funnel, format_why, load_definitions
from huiliu_infra.cli_profiles import CliError

from tests.functions.admin.openapi_contract import contract_of
from tests.functions.journeys.engine_helpers import make_engine, profile_changed
from tests.unit.identity.test_admin_routes import _apigw_event
from tests.unit.journeys.journey_helpers import TENANT


class _Ctx:
    function_name = "admin"
    aws_request_id = "r1"


def _app() -> APIGatewayHttpResolver:
    """The admin app's resolver (validation, error shapes) with the journeys router, as tenant A."""
    from huiliu.adminapi.core import build_app

    app: APIGatewayHttpResolver = build_app(routers=[admin_routes.router])

    def auth(app: APIGatewayHttpResolver, next_middleware: Any) -> Response:
        app.append_context(tenant_id=TENANT)
        return next_middleware(app)

    app.use(middlewares=[auth])
    return app


def _call(app: APIGatewayHttpResolver, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    parts = urlsplit(path)
    event = _apigw_event(method, parts.path, parts.query, {}, json.dumps(body) if body is not None else None)
    response = app.resolve(event, _Ctx())
    status, answer = response["statusCode"], json.loads(response["body"]) if response.get("body") else None
    contract_of(app).check(method, path, status, answer)  # the documented shape, exactly
    return status, answer


@pytest.fixture
def world(deployed: Any) -> Any:
    settings = get_settings()
    tenants = DynamoRepository(settings.tenants_table)
    for template in ("coupon-sms", "winback-email", "recommend-b"):
        tenants.put(
            {"pk": f"T#{TENANT}", "sk": f"TEMPLATE#{template}", "template": {"template_id": template}}
        )
    DynamoRepository(settings.segments_table).put(
        {"pk": f"T#{TENANT}#SEG", "sk": "DEF#dormant_90_days", "version": 1}
    )
    repo = JourneysRepository(settings.journeys_table)
    stage.configure(STAGE, service=AdminServices(journeys=JourneyAdmin(repo, build_catalog)))
    yield _app()
    stage.configure(STAGE)


def test_the_examples_apply_against_the_live_catalog_and_list(world: Any) -> None:
    for doc in example_documents():
        status, body = _call(world, "POST", "/admin/journeys", doc)
        assert status == 200, body
        assert body["version"] == 1
    status, body = _call(world, "GET", "/admin/journeys")
    assert sorted(j["journey_id"] for j in body["journeys"]) == ["cross-sell-b", "signup-coupon", "winback"]


def test_unknown_references_are_refused_with_paths_and_nothing_is_stored(world: Any) -> None:
    doc = {
        "id": "bad",
        "trigger": {"segment_entered": "no-such-segment"},
        "steps": [
            {"id": "w", "type": "wait", "duration": "400d"},
            {"id": "s", "type": "send", "channel": "email", "template": "no-such-template", "next": "ghost"},
        ],
    }
    status, body = _call(world, "POST", "/admin/journeys", doc)
    assert status == 400
    assert body["code"] == "invalid_journey"
    problems = {(p["path"], p["reason"]) for p in body["problems"]}
    assert ("trigger.segment_entered", "unknown segment 'no-such-segment'") in problems
    assert ("steps[1].template", "unknown template 'no-such-template'") in problems
    assert ("steps[1].next", "unknown step 'ghost'") in problems
    assert ("steps[0]", "wait of 400d is longer than the tenant maximum 365d") in problems
    assert _call(world, "GET", "/admin/journeys")[1] == {"journeys": []}
    assert _call(world, "GET", "/admin/journeys/bad")[0] == 404


def test_lifecycle_funnel_and_why_over_http(world: Any, deployed: Any) -> None:
    doc = next(d for d in example_documents() if d["id"] == "signup-coupon")
    assert _call(world, "POST", "/admin/journeys", doc)[0] == 200
    engine = make_engine(deployed.tables["JourneysTable"], apply_examples=False)
    engine.send("profile.changed", profile_changed("p-200001", 1, event="Signed Up", created=True))
    status, why = _call(world, "GET", "/admin/journeys/why/p-200001?journey_id=signup-coupon")
    assert status == 200
    [e] = why["enrollments"]
    assert e["step"] == "wait-3d"
    assert [line["what"] for line in e["log"]] == ["entered", "waiting"]
    assert "wait-3d" in format_why(why)
    assert _call(world, "POST", "/admin/journeys/signup-coupon/pause")[1]["status"] == "paused"
    assert _call(world, "POST", "/admin/journeys/signup-coupon/pause")[0] == 200
    assert _call(world, "POST", "/admin/journeys/signup-coupon/resume")[1]["status"] == "active"
    assert _call(world, "POST", "/admin/journeys/signup-coupon/explode")[0] == 400
    status, funnel = _call(world, "GET", "/admin/journeys/signup-coupon/funnel")
    assert funnel["entered"] == 1
    assert "entered 1" in format_funnel(funnel)
    status, shown = _call(world, "GET", "/admin/journeys/signup-coupon")
    assert [e["profile_id"] for e in shown["recent_enrollments"]] == ["p-200001"]
    assert _call(world, "POST", "/admin/journeys/signup-coupon/archive")[1]["status"] == "archived"
    assert _call(world, "POST", "/admin/journeys/signup-coupon/resume")[0] == 409


def test_the_cli_reads_yaml_and_prints_problems_by_path(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "id: a\ntrigger: {event: x}\nsteps:\n  - {id: s, type: exit}\n---\nid: b\n"
    )
    docs = load_definitions([str(tmp_path)])
    assert [d["id"] for _, d in docs] == ["a", "b"]
    err = CliError(
        'POST /journeys -> HTTP 400: {"problems": [{"path": "steps[0].next", "reason": "unknown step"}]}'
    )
    assert _problems(err) == "  steps[0].next: unknown step"
