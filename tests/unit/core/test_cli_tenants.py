"""`huiliu tenants create` onboards a tenant that ingest and admin then recognise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from huiliu import aws
from huiliu.adminapi.auth import KeyAuthenticator
from huiliu.errors import Unauthorized
from huiliu.settings import get_settings
from huiliu.tenants import TenantDirectory, TenantRepository
from huiliu_infra.cli import main


def _directory() -> TenantDirectory:
    settings = get_settings()
    return TenantDirectory(
        TenantRepository(settings.tenants_table),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
    )


def test_create_with_table_and_prefix_prints_keys_that_work(
    deployed: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given the tenant's real Shopify app secret in a file
    given = tmp_path / "secrets.json"
    given.write_text(json.dumps({"shopify": {"secret": "shpss_real"}}))
    settings = get_settings()

    # When ops create the tenant
    code = main(
        [
            "tenants",
            "create",
            "shop-9",
            "--table",
            settings.tenants_table,
            "--secrets-prefix",
            settings.secrets_prefix,
            "--salt",
            settings.hash_salt,
            "--secrets",
            str(given),
        ]
    )

    # Then the printed write key finds the tenant, the given secret is kept, the admin key works
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    directory = _directory()
    assert directory.tenant_for_write_key(printed["connectors"]["segment"]["write_key"]) == "shop-9"
    assert directory.secrets("shop-9").shopify.secret == "shpss_real"  # type: ignore[union-attr]
    auth = KeyAuthenticator(TenantRepository(settings.tenants_table), settings.hash_salt)
    assert auth.tenant_for(f"Bearer {printed['admin_key']}") == "shop-9"
    with pytest.raises(Unauthorized):
        auth.tenant_for("Bearer hl_admin_other")
    assert printed["connectors"]["wechat"]["url"].endswith("/v1/hooks/wechat/shop-9")


def test_create_reads_table_and_prefix_from_the_stack_outputs(
    deployed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed stack whose outputs name the tenants table and secrets prefix
    settings = get_settings()
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "TenantsTableName": {"Value": settings.tenants_table},
            "SecretsPrefix": {"Value": settings.secrets_prefix},
        },
    }
    aws.client("cloudformation").create_stack(StackName="huiliu-test", TemplateBody=json.dumps(template))

    # When a tenant is created by stack name
    code = main(["tenants", "create", "shop-10", "--stack", "huiliu-test", "--salt", settings.hash_salt])

    # Then it lands in that table
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert _directory().tenant_for_write_key(printed["connectors"]["segment"]["write_key"]) == "shop-10"


def test_create_refuses_to_run_without_the_salt(deployed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUILIU_HASH_SALT", raising=False)
    assert main(["tenants", "create", "shop-11", "--table", "t", "--secrets-prefix", "p"]) == 2
