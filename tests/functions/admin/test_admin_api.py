"""The admin API's foundation: one OpenAPI document, the error shape, keys and scopes, revocation."""

from __future__ import annotations

from typing import Any

from huiliu.adminapi.auth import KeyAuthenticator
from huiliu.settings import get_settings
from huiliu.tenants import TenantRepository


def test_the_openapi_document_is_public_and_lists_every_mounted_route(world: dict[str, Any]) -> None:
    reply = world["client"].call("GET", "/admin/openapi.json")

    assert reply.status == 200
    doc = reply.body
    assert doc["servers"] == [{"url": "/admin"}]
    for path in ("/profiles/{profile_id}", "/profiles/erase", "/keys", "/keys/{key_id}", "/tenant/settings"):
        assert path in doc["paths"]
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            assert "200" in operation["responses"], (method, path)
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
            assert "422" not in operation["responses"]


def test_the_swagger_page_is_self_contained(world: dict[str, Any]) -> None:
    reply = world["client"].call("GET", "/admin/docs")

    assert reply.status == 200
    assert "SwaggerUIBundle" in reply.raw
    assert "<script src=" not in reply.raw
    assert "<link rel='stylesheet'" not in reply.raw
    assert '"/profiles/erase"' in reply.raw


def test_unknown_fields_wrong_types_and_bad_json_get_a_400_naming_the_field(world: dict[str, Any]) -> None:
    client, key = world["client"], world["shop-a"]["admin"]

    unknown = client.call("POST", "/admin/keys", key, body={"scope": "read", "colour": "red"})
    wrong = client.call("POST", "/admin/keys", key, body={"scope": 7})
    broken = client.call("POST", "/admin/keys", key, raw_body='{"scope": ')
    not_object = client.call("POST", "/admin/profiles/erase", key, body=["email", "x"])
    bad_query = client.call(
        "GET", f"/admin/profiles/{world['shop-a']['profile_id']}", key, query={"limit": "x"}
    )

    assert (unknown.status, unknown.body["errors"][0]["field"]) == (400, "body.colour")
    assert (wrong.status, wrong.body["errors"][0]["field"]) == (400, "body.scope")
    assert (broken.status, broken.body["code"]) == (400, "invalid_json")
    assert not_object.status == 400
    assert (bad_query.status, bad_query.body["errors"][0]["field"]) == (400, "query.limit")
    assert len(client.call("GET", "/admin/keys", key).body["keys"]) == 3  # nothing created


def test_an_oversized_body_gets_413_before_anything_runs(world: dict[str, Any]) -> None:
    reply = world["client"].call(
        "POST",
        "/admin/profiles/erase",
        world["shop-a"]["admin"],
        raw_body='{"type": "' + "x" * 300_000 + '"}',
    )

    assert (reply.status, reply.body["code"]) == (413, "payload_too_large")


def test_a_key_is_shown_once_and_stored_hashed(world: dict[str, Any], deployed: Any) -> None:
    client, key = world["client"], world["shop-a"]["admin"]

    created = client.call("POST", "/admin/keys", key, body={"scope": "read", "name": "bi tool"})
    listed = client.call("GET", "/admin/keys", key)

    assert created.status == 200
    token = created.body["key"]
    assert client.call("GET", "/admin/tenant", token).status == 200
    assert token not in listed.raw
    assert all("key" not in k and "key_hash" not in k for k in listed.body["keys"])
    from huiliu import aws

    dump = str(aws.client("dynamodb").scan(TableName=deployed.tables["TenantsTable"])["Items"])
    assert token not in dump


def test_revocation_takes_effect_within_the_cache_time_everywhere(world: dict[str, Any]) -> None:
    # Given another warm container that has already seen the read key (its own cache)
    settings = get_settings()
    now = [1000.0]
    other = KeyAuthenticator(
        TenantRepository(settings.tenants_table), settings.hash_salt, monotonic=lambda: now[0]
    )
    bearer = f"Bearer {world['shop-a']['read']}"
    assert other.tenant_for(bearer) == "shop-a"

    # When the tenant's admin revokes it through the API
    client = world["client"]
    revoked = client.call("DELETE", f"/admin/keys/{world['shop-a']['read_key_id']}", world["shop-a"]["admin"])

    # Then the container that revoked refuses it at once, the other one within 30 s
    assert revoked.status == 200
    assert revoked.body["effective_within_seconds"] <= 60
    assert client.call("GET", "/admin/tenant", world["shop-a"]["read"]).status == 401
    now[0] += 29
    assert other.tenant_for(bearer) == "shop-a"
    now[0] += 2
    import pytest
    from huiliu.errors import Unauthorized

    with pytest.raises(Unauthorized):
        other.tenant_for(bearer)


def test_rotating_a_key_gives_a_new_one_with_the_same_scope_and_ends_the_old(world: dict[str, Any]) -> None:
    client, admin = world["client"], world["shop-a"]["admin"]

    rotated = client.call("POST", f"/admin/keys/{world['shop-a']['read_key_id']}/rotate", admin)

    assert rotated.status == 200
    assert rotated.body["scope"] == "read"
    assert client.call("GET", "/admin/tenant", rotated.body["key"]).status == 200
    assert client.call("GET", "/admin/tenant", world["shop-a"]["read"]).status == 401


def test_settings_round_trip_and_unknown_settings_are_refused(world: dict[str, Any]) -> None:
    client, admin = world["client"], world["shop-a"]["admin"]
    document = client.call("GET", "/admin/tenant/settings", admin).body

    document["timezone"] = "Europe/Berlin"
    put = client.call("PUT", "/admin/tenant/settings", admin, body=document)
    bad_zone = client.call("PUT", "/admin/tenant/settings", admin, body={**document, "timezone": "Mars/Base"})
    unknown = client.call("PUT", "/admin/tenant/settings", admin, body={**document, "colour": "red"})

    assert put.status == 200
    assert client.call("GET", "/admin/tenant", admin).body["tenant"]["timezone"] == "Europe/Berlin"
    assert bad_zone.status == 400
    assert (unknown.status, unknown.body["errors"][0]["field"]) == (400, "body.colour")


def test_connector_secrets_are_masked_and_replaced_one_connector_at_a_time(world: dict[str, Any]) -> None:
    client, admin = world["client"], world["shop-a"]["admin"]
    wechat_token = world["shop-a"]["secrets"]["wechat"]["token"]

    put = client.call(
        "PUT",
        "/admin/tenant/connectors/shopify",
        admin,
        body={"secrets": {"secret": "shpss_brand_new_secret"}},
    )
    listed = client.call("GET", "/admin/tenant/connectors", admin)

    assert put.status == 200
    assert "shpss_brand_new_secret" not in listed.raw
    assert wechat_token not in listed.raw
    shopify = next(c for c in listed.body["connectors"] if c["connector"] == "shopify")
    assert shopify["secrets"]["secret"] == "****cret"
    from huiliu import aws
    from huiliu.tenants.provisioning import read_secrets

    stored = read_secrets(aws.client("secretsmanager"), get_settings().secrets_prefix, "shop-a")
    assert stored.shopify.secret == "shpss_brand_new_secret"  # type: ignore[union-attr]
    assert stored.wechat.token == wechat_token  # type: ignore[union-attr]
