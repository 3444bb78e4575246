"""Every admin and ops operation answers a typed model and documents the shared error shape.

The segments and journeys flows (tests/functions/test_segments_stage.py,
tests/functions/journeys/test_journeys_admin.py) check every answer they get against the document
(``openapi_contract.Contract``); the schemathesis run (tests/integration/test_admin_fuzz.py) fuzzes
against the same, now typed, schemas.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from huiliu.adminapi.core import ERRORS, build_app, openapi_document
from pydantic import BaseModel

from tests.functions.admin.openapi_contract import Contract, document_of, untyped_operations
from tests.functions.ingest.ingest_helpers import load_function


class Counted(BaseModel):
    id: str
    count: int


@pytest.mark.parametrize(("function", "prefix"), [("admin", "/admin"), ("ops", "/ops")])
def test_every_operation_answers_a_model_and_documents_its_errors(function: str, prefix: str) -> None:
    doc = document_of(load_function(function), prefix)

    assert len(doc["paths"]) >= (25 if function == "admin" else 3)
    assert untyped_operations(doc) == []


def test_the_walk_flags_an_untyped_answer_and_a_missing_error_shape() -> None:
    router = APIGatewayHttpRouter()

    @router.get("/loose", responses=ERRORS)
    def loose() -> dict[str, Any]:
        return {}

    @router.get("/bare", responses={200: {"description": "OK"}})
    def bare() -> dict[str, Any]:
        return {}

    doc = openapi_document(build_app(routers=[router]))
    doc["paths"]["/bare"]["get"]["responses"].pop("404")

    assert untyped_operations(doc) == [
        "GET /loose 200: an untyped object (no properties, no model)",
        "GET /bare 200: an untyped object (no properties, no model)",
        "GET /bare: 404 is not documented as ErrorBody",
    ]


def test_the_contract_check_refuses_an_answer_that_breaks_its_schema() -> None:
    contract = Contract(document_of(load_function("admin")))

    contract.check("GET", "/admin/segments/vip/count", 200, {"id": "vip", "count": 3})
    contract.check("GET", "/admin/segments/models", 200, {"lifecycle": {}, "rfm": {}})
    with pytest.raises(AssertionError, match="count"):
        contract.check("GET", "/admin/segments/vip/count", 200, {"id": "vip", "count": "3"})
    with pytest.raises(AssertionError, match="undocumented 418"):
        contract.check("GET", "/admin/segments/vip/count", 418, {})
    with pytest.raises(AssertionError, match="problems"):
        contract.check("POST", "/admin/journeys", 400, {"code": "x", "message": "y", "problems": "none"})


def test_an_answer_that_breaks_its_model_is_a_500_not_blamed_on_the_caller() -> None:
    import json

    from tests.unit.identity.test_admin_routes import _apigw_event

    router = APIGatewayHttpRouter()

    @router.get("/broken", responses=ERRORS)
    def broken() -> Counted:
        return {"id": "x"}  # type: ignore[return-value]

    @router.get("/fine", responses=ERRORS)
    def fine() -> Counted:
        return Counted(id="x", count=1)

    app = build_app(routers=[router])
    answers = {
        path: app.resolve(_apigw_event("GET", f"/admin{path}", "", {}, None), None)
        for path in ("/broken", "/fine")
    }

    assert answers["/broken"]["statusCode"] == 500
    assert json.loads(answers["/broken"]["body"])["code"] == "internal_error"
    assert (answers["/fine"]["statusCode"], json.loads(answers["/fine"]["body"])) == (
        200,
        {"id": "x", "count": 1},
    )
