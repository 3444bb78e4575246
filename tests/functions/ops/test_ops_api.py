"""/ops: operator routes across tenants behind AWS IAM (SigV4) — refused without an IAM identity,
and the local runtime refuses the route rather than serve it unauthenticated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functions.admin.admin_helpers import http_event
from tests.functions.ingest.ingest_helpers import LambdaContext, load_function

OPERATOR = {"iam": {"accessKey": "AKIAOPS", "userArn": "arn:aws:iam::123456789012:user/ops"}}


def _call(method: str, path: str, *, iam: bool = True, body: Any = None) -> tuple[int, Any]:
    event = http_event(method, path, body=body)
    event["routeKey"] = event["requestContext"]["routeKey"] = "ANY /ops/{proxy+}"
    if iam:
        event["requestContext"]["authorizer"] = OPERATOR
    response = load_function("ops").handler(event, LambdaContext(function_name="ops"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


@pytest.fixture
def tenant(deployed: Any) -> str:
    from huiliu import stage
    from huiliu.adminapi.wiring import STAGE
    from huiliu.settings import get_settings
    from huiliu_infra.cli_tenants import create_tenant

    stage.configure(STAGE)
    settings = get_settings()
    create_tenant(
        "shop-o",
        table=settings.tenants_table,
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
    )
    return "shop-o"


def test_without_an_iam_identity_nothing_is_served(tenant: str) -> None:
    status, body = _call("GET", f"/ops/tenants/{tenant}/keys", iam=False)

    assert (status, body["code"]) == (403, "iam_required")


def test_an_operator_creates_lists_and_revokes_a_tenants_key(tenant: str) -> None:
    status, created = _call("POST", f"/ops/tenants/{tenant}/keys", body={"scope": "read", "name": "support"})
    assert status == 200
    assert created["key"].startswith("hl_r_")

    _, listed = _call("GET", f"/ops/tenants/{tenant}/keys")
    assert {k["key_id"] for k in listed["keys"]} >= {created["key_id"]}
    assert created["key"] not in json.dumps(listed)

    status, revoked = _call("DELETE", f"/ops/tenants/{tenant}/keys/{created['key_id']}")
    assert (status, revoked["revoked"]) == (200, True)
    assert _call("POST", "/ops/tenants/no-such-shop/keys", body={"scope": "read"})[0] == 404


def test_the_ops_openapi_document_is_separate_and_signed(tenant: str) -> None:
    status, doc = _call("GET", "/ops/openapi.json")

    assert status == 200
    assert doc["servers"] == [{"url": "/ops"}]
    assert "/tenants/{tenant}/keys" in doc["paths"]
    assert "/profiles/erase" not in doc["paths"]


def test_the_template_puts_ops_behind_aws_iam_and_the_local_runtime_refuses_it(deployed: Any) -> None:
    ops = [r for r in deployed.routes if r.path.startswith("/ops")]
    admin = [r for r in deployed.routes if r.path.startswith("/admin")]

    assert [r.authorizer for r in ops] == ["AWS_IAM"]
    assert all(r.authorizer is None for r in admin)
