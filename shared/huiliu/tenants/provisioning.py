"""Creating tenants: settings, connector secrets (Secrets Manager) and the write-key index."""

from __future__ import annotations

import json
import secrets as pysecrets
from typing import Any

from huiliu.tenants.models import (
    SegmentSecrets,
    ShopifySecrets,
    SignedJsonSecrets,
    TenantSecrets,
    TenantSettings,
    WeChatSecrets,
    YouzanSecrets,
)
from huiliu.tenants.repository import TenantRepository, hash_key, secret_name


def new_demo_secrets() -> TenantSecrets:
    """Fresh random connector secrets in each source's own format."""
    import base64

    return TenantSecrets(
        youzan=YouzanSecrets(client_id=pysecrets.token_hex(8), client_secret=pysecrets.token_hex(16)),
        wechat=WeChatSecrets(
            token=pysecrets.token_urlsafe(16).replace("-", "a").replace("_", "b"),
            encoding_aes_key=base64.b64encode(pysecrets.token_bytes(32)).decode()[:43],
            app_id="wx" + pysecrets.token_hex(8),
        ),
        shopify=ShopifySecrets(secret="shpss_" + pysecrets.token_hex(16)),
        signed_json=SignedJsonSecrets(secret="whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode()),
        segment=SegmentSecrets(write_key=pysecrets.token_urlsafe(24)),
    )


class TenantExists(Exception):
    """``create`` refuses a tenant that exists (its keys and connector secrets stay as they are)."""


def provision_tenant(
    settings: TenantSettings,
    tenant_secrets: TenantSecrets,
    *,
    repo: TenantRepository,
    secrets_client: Any,
    secrets_prefix: str,
    salt: str,
    replace_secret: bool = False,
) -> None:
    """Create a tenant: settings, its secret, and its write-key index entry.

    Refuses (``TenantExists``) when the tenant's settings exist. A secret left under the tenant's
    name without settings (a half-done earlier run, a shared LocalStack) is refused too unless
    ``replace_secret``: connector secrets are never replaced silently.
    """
    if repo.get_settings(settings.tenant_id) is not None:
        raise TenantExists(f"tenant {settings.tenant_id!r} exists")
    name = secret_name(secrets_prefix, settings.tenant_id)
    body = json.dumps(tenant_secrets.model_dump(mode="json", by_alias=True, exclude_none=True))
    try:
        secrets_client.create_secret(Name=name, SecretString=body)
    except secrets_client.exceptions.ResourceExistsException as exc:
        if not replace_secret:
            raise TenantExists(f"secret {name} exists (pass replace_secret to overwrite it)") from exc
        secrets_client.put_secret_value(SecretId=name, SecretString=body)
    if tenant_secrets.segment:
        repo.put_write_key(hash_key(tenant_secrets.segment.write_key, salt), settings.tenant_id)
    # settings last: a tenant exists (for ``create`` and for requests) once everything else is there
    repo.put_settings(settings)


def read_secrets(secrets_client: Any, secrets_prefix: str, tenant_id: str) -> TenantSecrets:
    raw = secrets_client.get_secret_value(SecretId=secret_name(secrets_prefix, tenant_id))["SecretString"]
    return TenantSecrets.model_validate(json.loads(raw))


def update_secrets(
    tenant_id: str,
    given: dict[str, Any],
    *,
    repo: TenantRepository,
    secrets_client: Any,
    secrets_prefix: str,
    salt: str,
) -> TenantSecrets:
    """Replace the named connectors' secrets only (``given`` = ``{"shopify": {...}}``); keep the rest.

    A new Segment write key is indexed; the old one stops resolving (its index row is deleted).
    """
    current = read_secrets(secrets_client, secrets_prefix, tenant_id)
    merged = {**current.model_dump(mode="json", by_alias=True, exclude_none=True), **given}
    updated = TenantSecrets.model_validate(merged)
    secrets_client.put_secret_value(
        SecretId=secret_name(secrets_prefix, tenant_id),
        SecretString=json.dumps(updated.model_dump(mode="json", by_alias=True, exclude_none=True)),
    )
    old = current.segment.write_key if current.segment else None
    new = updated.segment.write_key if updated.segment else None
    if new and new != old:
        repo.put_write_key(hash_key(new, salt), tenant_id)
    if old and old != new:
        repo.delete_write_key(hash_key(old, salt), tenant_id)
    return updated
