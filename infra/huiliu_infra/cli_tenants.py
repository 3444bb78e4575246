"""``huiliu tenants create``: onboard a tenant on a deployed stack (or the local runtime).

Writes the tenant's settings and hashed write/admin keys to the tenants table and its connector
secrets to Secrets Manager (``<SecretsPrefix>/tenants/<tenant>``), then prints the keys and the
connector settings once. Table and prefix come from the stack's outputs (``--stack``); the hash
salt is the stack's ``HashSalt`` parameter (``--salt`` or ``HUILIU_HASH_SALT``; it is NoEcho, so
CloudFormation cannot tell it back). Real connector secrets (Shopify's app secret, WeChat's token
and EncodingAESKey, Youzan's client id/secret) come from ``--secrets FILE`` (the
``huiliu.tenants.TenantSecrets`` JSON shape); anything not given is generated.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from typing import Any


def register(sub: Any) -> None:
    tenants = sub.add_parser("tenants", help="onboard tenants on a deployed stack")
    tsub = tenants.add_subparsers(dest="tenants_action", required=True)
    create = tsub.add_parser("create", help="create (or update) a tenant and print its keys once")
    create.add_argument("tenant_id")
    create.add_argument("--stack", help="CloudFormation stack name (reads TenantsTableName, SecretsPrefix)")
    create.add_argument("--table", help="tenants table name (instead of --stack)")
    create.add_argument("--secrets-prefix", help="secrets prefix, e.g. huiliu/prod (instead of --stack)")
    create.add_argument("--salt", default=os.environ.get("HUILIU_HASH_SALT"), help="the stack's HashSalt")
    create.add_argument("--name", default="")
    create.add_argument("--timezone", default="Asia/Shanghai")
    create.add_argument("--default-region", default="CN", help="default phone region (ISO 3166)")
    create.add_argument("--secrets", help="JSON file with the tenant's real connector secrets")
    create.add_argument(
        "--api", default="https://<api-id>.execute-api.<region>.amazonaws.com", help="for the printed URLs"
    )
    create.set_defaults(func=cmd_create)


def _stack_outputs(stack: str) -> dict[str, str]:
    from huiliu import aws

    described = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def create_tenant(
    tenant_id: str,
    *,
    table: str,
    secrets_prefix: str,
    salt: str,
    name: str = "",
    timezone: str = "Asia/Shanghai",
    default_region: str = "CN",
    given_secrets: dict[str, Any] | None = None,
    api_url: str | None = None,
) -> dict[str, Any]:
    """Provision a tenant; returns what to hand to the tenant (keys, connector settings and, given
    the HTTP API's base URL, each connector's URL)."""
    from huiliu import aws
    from huiliu.tenants import (
        TenantRepository,
        TenantSecrets,
        TenantSettings,
        hash_key,
        new_demo_secrets,
        provision_tenant,
    )

    generated = new_demo_secrets().model_dump(by_alias=True)
    merged = {**generated, **(given_secrets or {})}
    tenant_secrets = TenantSecrets.model_validate(merged)
    settings = TenantSettings(
        tenant_id=tenant_id, name=name, timezone=timezone, default_region=default_region
    )
    repo = TenantRepository(table)
    provision_tenant(
        settings,
        tenant_secrets,
        repo=repo,
        secrets_client=aws.client("secretsmanager"),
        secrets_prefix=secrets_prefix,
        salt=salt,
    )
    admin_key = "hl_admin_" + secrets.token_urlsafe(24)
    repo.put_admin_key(hash_key(admin_key, salt), tenant_id)
    connectors = tenant_secrets.model_dump(mode="json", by_alias=True, exclude_none=True)
    if api_url:
        for connector in ("youzan", "wechat", "shopify", "signed-json"):
            connectors.setdefault(connector, {})["url"] = f"{api_url}/v1/hooks/{connector}/{tenant_id}"
        connectors.setdefault("segment", {})["url"] = f"{api_url}/v1"
    return {"tenant_id": tenant_id, "admin_key": admin_key, "connectors": connectors}


def cmd_create(args: argparse.Namespace) -> int:
    if not args.salt:
        print("--salt (or HUILIU_HASH_SALT) is required: it must equal the stack's HashSalt", file=sys.stderr)
        return 2
    table, prefix = args.table, args.secrets_prefix
    if args.stack:
        outputs = _stack_outputs(args.stack)
        table = table or outputs["TenantsTableName"]
        prefix = prefix or outputs["SecretsPrefix"]
    if not table or not prefix:
        print("give --stack, or both --table and --secrets-prefix", file=sys.stderr)
        return 2
    given = None
    if args.secrets:
        with open(args.secrets, encoding="utf-8") as fh:
            given = json.load(fh)
    result = create_tenant(
        args.tenant_id,
        table=table,
        secrets_prefix=prefix,
        salt=args.salt,
        name=args.name,
        timezone=args.timezone,
        default_region=args.default_region,
        given_secrets=given,
        api_url=args.api,
    )
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print("Keys are stored hashed: keep this output, it cannot be shown again.", file=sys.stderr)
    return 0
