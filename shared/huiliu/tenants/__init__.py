"""Tenants: settings (time zone, phone region, identity rules …), connector secrets, API keys.

Split along its seams:

- ``models``: the settings and connector-secret shapes;
- ``repository``: the tenants table (settings, write-key index, API keys — hashed);
- ``directory``: cached read access for request handlers (settings, secrets, write keys);
- ``provisioning``: creating a tenant (settings, its Secrets Manager secret, the write-key index).

Settings live in the tenants table; connector secrets live in Secrets Manager (one JSON secret per
tenant, ``{SECRETS_PREFIX}/tenants/{tenant}``) and are read through Powertools Parameters with a
cache, so a warm Lambda does not call Secrets Manager per request. Keys are stored hashed.
"""

from __future__ import annotations

from huiliu.tenants.directory import TenantDirectory
from huiliu.tenants.models import (
    Connector,
    FrequencyCap,
    QuietHours,
    SegmentSecrets,
    ShopifySecrets,
    SignedJsonSecrets,
    TenantSecrets,
    TenantSettings,
    WeChatSecrets,
    YouzanSecrets,
)
from huiliu.tenants.provisioning import TenantExists, new_demo_secrets, provision_tenant
from huiliu.tenants.repository import TenantRepository, hash_key, secret_name

__all__ = [
    "Connector",
    "FrequencyCap",
    "QuietHours",
    "SegmentSecrets",
    "ShopifySecrets",
    "SignedJsonSecrets",
    "TenantDirectory",
    "TenantExists",
    "TenantRepository",
    "TenantSecrets",
    "TenantSettings",
    "WeChatSecrets",
    "YouzanSecrets",
    "hash_key",
    "new_demo_secrets",
    "provision_tenant",
    "secret_name",
]
