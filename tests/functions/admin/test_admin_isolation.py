"""On EVERY route of the OpenAPI document: tenant A's keys cannot read, change or even detect tenant
B's data, and a key cannot do more than its scope allows.

The walk reads /admin/openapi.json, so a route another stage mounts is covered without editing
this file. Path parameters are filled with tenant B's real ids (and, for comparison, with made-up
ids of the same shape); request bodies come from each body model's OpenAPI ``examples`` (a body
model without one and with required fields fails the walk: give it an example).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.functions.admin.admin_helpers import AdminClient

# Query parameters filled when a route declares them: B's data, and a made-up value to compare with.
QUERY_FILL = {"email": "li@example.com", "limit": "5"}
QUERY_MADE_UP = {"email": "nobody@example.com", "limit": "5"}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, methods in doc["paths"].items() for m, op in methods.items()]


def _body(doc: dict[str, Any], operation: dict[str, Any]) -> Any:
    request = operation.get("requestBody")
    if not request:
        return None
    schema = request["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    assert not schema.get("required"), f"give {schema.get('title')} an OpenAPI example (json_schema_extra)"
    return {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _fill(path: str, values: dict[str, str]) -> str:
    """Path parameters from ``values``; one the walk has no tenant-B object for gets a made-up id
    (then the walk still checks 5xx, leaks and scope, but not detection: add B's value above)."""
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return re.sub(r"\{[^}]+\}", "zz0000000000", path)


def _query(operation: dict[str, Any], fill: dict[str, str] = QUERY_FILL) -> dict[str, str]:
    names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    return {n: fill[n] for n in names if n in fill}


def _snapshot(deployed: Any, secrets_prefix: str) -> str:
    """Everything of tenant B's: its rows in every table and its connector secret."""
    from huiliu import aws

    ddb = aws.client("dynamodb")
    rows = []
    for table in deployed.tables.values():
        for item in ddb.scan(TableName=table).get("Items", []):
            text = json.dumps(item, sort_keys=True, default=repr)
            if "shop-b" in text:
                rows.append(text)
    secret = aws.client("secretsmanager").get_secret_value(SecretId=f"{secrets_prefix}/tenants/shop-b")
    return "\n".join(sorted(rows)) + secret["SecretString"]


@pytest.fixture
def doc(world: dict[str, Any]) -> dict[str, Any]:
    return world["client"].call("GET", "/admin/openapi.json").body


def test_tenant_a_cannot_read_change_or_detect_tenant_b_on_any_route(
    world: dict[str, Any], doc: dict[str, Any], deployed: Any
) -> None:
    from huiliu.settings import get_settings

    client: AdminClient = world["client"]
    a, b = world["shop-a"], world["shop-b"]
    b_values = {
        "profile_id": b["profile_id"],
        "key_id": b["read_key_id"],
        "connector": "shopify",
    }
    made_up = {"profile_id": "p000000000000000000000000", "key_id": "0123456789ab", "connector": "shopify"}
    b_markers = [b["profile_id"], b["absorbed_id"], "li@shop-b.example", "li@example.com", "shop-b"]
    b_markers += [v for conf in b["secrets"].values() for v in conf.values() if isinstance(v, str)]
    prefix = get_settings().secrets_prefix
    before = _snapshot(deployed, prefix)

    operations = _operations(doc)
    assert len(operations) >= 10
    for method, path, operation in operations:
        body = _body(doc, operation)
        query, fake_query = _query(operation), _query(operation, QUERY_MADE_UP)
        real = client.call(method, "/admin" + _fill(path, b_values), a["admin"], query=query, body=body)
        fake = client.call(method, "/admin" + _fill(path, made_up), a["admin"], query=fake_query, body=body)

        where = f"{method} {path}"
        assert real.status < 500, where
        # cannot detect: B's real ids get exactly what made-up ids get (the ids echoed aside)
        echoed = real.raw
        for name, value in b_values.items():
            echoed = echoed.replace(value, made_up[name])
        for name, value in query.items():
            echoed = echoed.replace(value, fake_query[name])
        if "{" in path or query:
            assert (real.status, echoed) == (fake.status, fake.raw), where
        else:  # no id of B's in the request: same status and error code (answers may carry new ids)
            assert (real.status, (real.body or {}).get("code")) == (
                fake.status,
                (fake.body or {}).get("code"),
            )
        # cannot read: nothing of B's in the answer but what the caller sent
        sent = [*b_values.values(), *query.values(), *_strings(body)]
        leaked = [m for m in b_markers if m in real.raw and m not in sent]
        assert not leaked, f"{where} leaked {leaked}"

    # cannot change: B's rows and secret are byte for byte what they were
    assert _snapshot(deployed, prefix) == before
    # and B's own keys still work
    assert client.call("GET", f"/admin/profiles/{b['profile_id']}", b["read"]).status == 200


def test_a_read_key_cannot_write_and_a_write_key_cannot_administer_on_any_route(
    world: dict[str, Any], doc: dict[str, Any], deployed: Any
) -> None:
    from huiliu.adminapi.auth import required_scope
    from huiliu.settings import get_settings

    client: AdminClient = world["client"]
    a = world["shop-a"]
    own = {"profile_id": a["profile_id"], "key_id": a["admin_key_id"], "connector": "shopify"}
    prefix = get_settings().secrets_prefix
    before = _snapshot(deployed, prefix.replace("shop-b", "shop-a"))
    checked = 0
    for method, path, operation in _operations(doc):
        body = _body(doc, operation)
        needed = required_scope(method, path.split("{")[0].rstrip("/") or "/")
        url = "/admin" + _fill(path, own)
        for scope in ("read", "write"):
            reply = client.call(method, url, a[scope], query=_query(operation), body=body)
            allowed = {"read": 1, "write": 2}[scope] >= {"read": 1, "write": 2, "admin": 3}[needed]
            if not allowed:
                assert (reply.status, reply.body["code"]) == (403, "forbidden"), f"{scope} {method} {path}"
                checked += 1
            else:
                assert reply.status != 403, f"{scope} {method} {path}"
        if method != "GET":
            assert needed != "read", f"{method} {path} must need write or admin"
    assert checked >= 8
    assert _snapshot(deployed, prefix) == before  # B untouched; A only changed by allowed calls
