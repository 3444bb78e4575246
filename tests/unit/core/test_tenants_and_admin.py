"""Tenants (settings, secrets through Powertools Parameters, hashed keys) and the admin front door."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huiliu import aws
from huiliu.errors import NotFound
from huiliu.settings import get_settings
from huiliu.tenants import (
    TenantDirectory,
    TenantRepository,
    TenantSettings,
    hash_key,
    new_demo_secrets,
    provision_tenant,
)
from huiliu.tenants.provisioning import TenantExists, update_secrets


def _provision(tenant_id: str = "shop-1") -> tuple[TenantDirectory, Any]:
    settings = get_settings()
    repo = TenantRepository(settings.tenants_table)
    secrets = new_demo_secrets()
    provision_tenant(
        TenantSettings(tenant_id=tenant_id, default_region="CN"),
        secrets,
        repo=repo,
        secrets_client=aws.client("secretsmanager"),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
    )
    directory = TenantDirectory(repo, secrets_prefix=settings.secrets_prefix, salt=settings.hash_salt)
    return directory, secrets


def test_a_provisioned_tenant_is_found_by_id_and_by_write_key(deployed: Any) -> None:
    directory, secrets = _provision()
    assert directory.settings("shop-1").default_region == "CN"
    assert directory.secrets("shop-1").wechat.token == secrets.wechat.token  # type: ignore[union-attr]
    assert directory.tenant_for_write_key(secrets.segment.write_key) == "shop-1"
    assert directory.tenant_for_write_key("nope") is None


def test_write_keys_are_stored_hashed_never_in_clear(deployed: Any) -> None:
    _, secrets = _provision()
    table = deployed.tables["TenantsTable"]
    dump = json.dumps(aws.client("dynamodb").scan(TableName=table)["Items"])
    assert secrets.segment.write_key not in dump


def test_unknown_tenants_are_not_found_for_settings_and_secrets(deployed: Any) -> None:
    directory, _ = _provision()
    with pytest.raises(NotFound):
        directory.settings("ghost")
    with pytest.raises(NotFound):
        directory.secrets("ghost")


def test_reprovisioning_an_existing_tenant_is_refused_and_keeps_its_secrets(deployed: Any) -> None:
    directory, secrets = _provision()
    with pytest.raises(TenantExists):
        _provision()
    assert directory.secrets("shop-1").shopify.secret == secrets.shopify.secret  # type: ignore[union-attr]


def test_set_secrets_replaces_only_the_named_connector_and_moves_the_write_key(deployed: Any) -> None:
    _directory, secrets = _provision()
    settings = get_settings()
    update_secrets(
        "shop-1",
        {"shopify": {"secret": "shpss_new"}, "segment": {"write_key": "wk-new"}},
        repo=TenantRepository(settings.tenants_table),
        secrets_client=aws.client("secretsmanager"),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
    )
    fresh = TenantDirectory(
        TenantRepository(settings.tenants_table),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
    )
    assert fresh.secrets("shop-1").shopify.secret == "shpss_new"  # type: ignore[union-attr]
    assert fresh.secrets("shop-1").wechat.token == secrets.wechat.token  # type: ignore[union-attr]
    assert fresh.tenant_for_write_key("wk-new") == "shop-1"
    assert fresh.tenant_for_write_key(secrets.segment.write_key) is None  # type: ignore[union-attr]


def _admin_event(path: str, key: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "",
            },
            "requestId": "r1",
            "routeKey": "ANY /admin/{proxy+}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


class _Ctx:
    function_name = "admin"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:ap-east-1:123456789012:function:admin"
    aws_request_id = "r1"


@pytest.fixture
def admin_app(deployed: Any) -> Any:
    import importlib.util

    from huiliu_infra.local.provision import ROOT

    spec = importlib.util.spec_from_file_location("admin_app_under_test", ROOT / "functions/admin/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_admin_refuses_requests_without_a_valid_key(admin_app: Any) -> None:
    _provision()
    missing = admin_app.handler(_admin_event("/admin/tenant", None), _Ctx())
    wrong = admin_app.handler(_admin_event("/admin/tenant", "hl_admin_wrong"), _Ctx())
    assert missing["statusCode"] == 401
    assert json.loads(missing["body"])["code"] == "missing_credentials"
    assert wrong["statusCode"] == 401
    assert json.loads(wrong["body"])["code"] == "invalid_credentials"


def test_admin_key_resolves_to_its_tenant(admin_app: Any) -> None:
    _provision("shop-2")
    settings = get_settings()
    TenantRepository(settings.tenants_table).put_admin_key(
        hash_key("hl_admin_ok", settings.hash_salt), "shop-2"
    )
    answer = admin_app.handler(_admin_event("/admin/tenant", "hl_admin_ok"), _Ctx())
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["tenant"]["tenant_id"] == "shop-2"
