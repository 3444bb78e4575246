"""``huiliu tenants create|keys|rotate-key|revoke-key|set-secrets``: tenants and their keys, as an operator.

Acts on the tenants table and Secrets Manager directly with the operator's AWS credentials (a
tenant's own admins use the admin API's ``/admin/keys`` and ``/admin/tenant/connectors``). Table and
prefix come from the stack's outputs (``--stack``) or ``--table``/``--secrets-prefix``; the hash
salt is the stack's ``HashSalt`` parameter (``--salt`` or ``HUILIU_HASH_SALT``; it is NoEcho, so
CloudFormation cannot tell it back).

- ``create`` writes the tenant's settings, its connector secrets (``--secrets FILE`` in the
  ``huiliu.tenants.TenantSecrets`` JSON shape; anything not given is generated) and an admin key,
  and prints the keys once. It refuses a tenant that exists: its keys and secrets stay as they are.
- ``keys`` lists a tenant's keys (id, scope, name, created — never the keys).
- ``rotate-key`` issues a new key and revokes the old: ``--key-id ID`` for one key, else every key
  of ``--scope`` (default admin). ``revoke-key`` revokes ``--key-id ID`` or ``--all``. A revoked
  key stops working within 30 s (the admin function's key cache).
- ``set-secrets --secrets FILE`` replaces only the connectors named in the file; the others stay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _where(parser: Any) -> None:
    parser.add_argument("--stack", help="CloudFormation stack name (reads TenantsTableName, SecretsPrefix)")
    parser.add_argument("--table", help="tenants table name (instead of --stack)")
    parser.add_argument("--secrets-prefix", help="secrets prefix, e.g. huiliu/prod (instead of --stack)")
    parser.add_argument("--salt", default=os.environ.get("HUILIU_HASH_SALT"), help="the stack's HashSalt")


def register(sub: Any) -> None:
    tenants = sub.add_parser("tenants", help="onboard tenants and manage their keys (operator)")
    tsub = tenants.add_subparsers(dest="tenants_action", required=True)
    create = tsub.add_parser("create", help="create a tenant (refused if it exists) and print its keys once")
    create.add_argument("tenant_id")
    _where(create)
    create.add_argument("--name", default="")
    create.add_argument("--timezone", default="Asia/Shanghai")
    create.add_argument("--default-region", default="CN", help="default phone region (ISO 3166)")
    create.add_argument("--secrets", help="JSON file with the tenant's real connector secrets")
    create.add_argument(
        "--api", default="https://<api-id>.execute-api.<region>.amazonaws.com", help="for the printed URLs"
    )
    create.set_defaults(func=cmd_create)

    keys = tsub.add_parser("keys", help="list a tenant's API keys (never the keys themselves)")
    keys.add_argument("tenant_id")
    _where(keys)
    keys.set_defaults(func=cmd_keys)

    rotate = tsub.add_parser("rotate-key", help="issue a new key and revoke the old one(s)")
    rotate.add_argument("tenant_id")
    _where(rotate)
    rotate.add_argument("--key-id", help="rotate this key (default: every key of --scope)")
    rotate.add_argument("--scope", choices=["read", "write", "admin"], default="admin")
    rotate.set_defaults(func=cmd_rotate)

    revoke = tsub.add_parser("revoke-key", help="revoke a key (effective within 30 s)")
    revoke.add_argument("tenant_id")
    _where(revoke)
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--key-id")
    target.add_argument("--all", action="store_true", help="every key of the tenant")
    revoke.set_defaults(func=cmd_revoke)

    put = tsub.add_parser("set-secrets", help="replace the connectors named in FILE; keep the others")
    put.add_argument("tenant_id")
    _where(put)
    put.add_argument("--secrets", required=True, help='JSON file, e.g. {"shopify": {"secret": ...}}')
    put.set_defaults(func=cmd_set_secrets)


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
    replace_secret: bool = False,
) -> dict[str, Any]:
    """Provision a tenant; returns what to hand to the tenant (keys, connector settings and, given
    the HTTP API's base URL, each connector's URL). Raises ``TenantExists`` for an existing tenant."""
    from huiliu import aws
    from huiliu.adminapi.keys import KeyService
    from huiliu.tenants import (
        TenantRepository,
        TenantSecrets,
        TenantSettings,
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
        replace_secret=replace_secret,
    )
    admin_key, record = KeyService(repo, salt).create(tenant_id, "admin", "created with the tenant")
    connectors = tenant_secrets.model_dump(mode="json", by_alias=True, exclude_none=True)
    if api_url:
        for connector in ("youzan", "wechat", "shopify", "signed-json"):
            connectors.setdefault(connector, {})["url"] = f"{api_url}/v1/hooks/{connector}/{tenant_id}"
        connectors.setdefault("segment", {})["url"] = f"{api_url}/v1"
    return {
        "tenant_id": tenant_id,
        "admin_key": admin_key,
        "admin_key_id": record.key_id,
        "connectors": connectors,
    }


def _resolve(args: argparse.Namespace) -> tuple[str, str, str]:
    if not args.salt:
        raise SystemExit("--salt (or HUILIU_HASH_SALT) is required: it must equal the stack's HashSalt")
    table, prefix = args.table, args.secrets_prefix
    if args.stack:
        outputs = _stack_outputs(args.stack)
        table = table or outputs["TenantsTableName"]
        prefix = prefix or outputs["SecretsPrefix"]
    if not table or not prefix:
        raise SystemExit("give --stack, or both --table and --secrets-prefix")
    return table, prefix, args.salt


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def cmd_create(args: argparse.Namespace) -> int:
    from huiliu.tenants import TenantExists

    try:
        table, prefix, salt = _resolve(args)
    except SystemExit as exc:
        return _fail(str(exc))
    given = None
    if args.secrets:
        with open(args.secrets, encoding="utf-8") as fh:
            given = json.load(fh)
    try:
        result = create_tenant(
            args.tenant_id,
            table=table,
            secrets_prefix=prefix,
            salt=salt,
            name=args.name,
            timezone=args.timezone,
            default_region=args.default_region,
            given_secrets=given,
            api_url=args.api,
        )
    except TenantExists as exc:
        return _fail(
            f"{exc}: nothing changed. New keys: `huiliu tenants rotate-key`; "
            "new connector secrets: `huiliu tenants set-secrets`."
        )
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print("Keys are stored hashed: keep this output, it cannot be shown again.", file=sys.stderr)
    return 0


def _service(args: argparse.Namespace) -> Any:
    from huiliu.adminapi.keys import KeyService
    from huiliu.tenants import TenantRepository

    table, _prefix, salt = _resolve(args)
    return KeyService(TenantRepository(table), salt)


def cmd_keys(args: argparse.Namespace) -> int:
    try:
        service = _service(args)
    except SystemExit as exc:
        return _fail(str(exc))
    for key in service.list(args.tenant_id).keys:
        print(f"{key.key_id}  {key.scope:<5}  {key.created_at}  {key.prefix}…  {key.name}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from huiliu.errors import NotFound

    try:
        service = _service(args)
    except SystemExit as exc:
        return _fail(str(exc))
    try:
        if args.key_id:
            fresh = service.rotate(args.tenant_id, args.key_id)
            revoked = [args.key_id]
        else:
            old = [k for k in service.repo.api_keys(args.tenant_id) if k.scope == args.scope]
            fresh = service.created(args.tenant_id, args.scope, f"rotated {args.scope} key")
            for key in old:
                service.revoke(args.tenant_id, key.key_id)
            revoked = [k.key_id for k in old]
    except NotFound as exc:
        return _fail(str(exc))
    print(json.dumps({**fresh.model_dump(), "revoked": revoked}, indent=2))
    print(
        f"Revoked keys stop working within {service.REVOCATION_SECONDS} s. "
        "The new key is stored hashed: keep this output.",
        file=sys.stderr,
    )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from huiliu.errors import NotFound

    try:
        service = _service(args)
    except SystemExit as exc:
        return _fail(str(exc))
    ids = [k.key_id for k in service.repo.api_keys(args.tenant_id)] if args.all else [args.key_id]
    try:
        for key_id in ids:
            service.revoke(args.tenant_id, key_id)
    except NotFound as exc:
        return _fail(str(exc))
    print(json.dumps({"revoked": ids, "effective_within_seconds": service.REVOCATION_SECONDS}))
    return 0


def cmd_set_secrets(args: argparse.Namespace) -> int:
    from huiliu import aws
    from huiliu.tenants import TenantRepository
    from huiliu.tenants.provisioning import update_secrets

    try:
        table, prefix, salt = _resolve(args)
    except SystemExit as exc:
        return _fail(str(exc))
    with open(args.secrets, encoding="utf-8") as fh:
        given = json.load(fh)
    updated = update_secrets(
        args.tenant_id,
        given,
        repo=TenantRepository(table),
        secrets_client=aws.client("secretsmanager"),
        secrets_prefix=prefix,
        salt=salt,
    )
    names = sorted(updated.model_dump(by_alias=True, exclude_none=True))
    print(f"replaced: {', '.join(sorted(given))}; kept: {', '.join(n for n in names if n not in given)}")
    return 0
