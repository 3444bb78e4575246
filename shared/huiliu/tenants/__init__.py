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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Loaded on first use (PEP 562): importing one submodule (the admin API's key lookup imports
# ``repository``) does not load the settings models, the directory and provisioning (cold start).
_EXPORTS = {
    "TenantDirectory": "directory",
    **dict.fromkeys(
        (
            "Connector",
            "FrequencyCap",
            "QuietHours",
            "SegmentSecrets",
            "ShopifySecrets",
            "SignedJsonSecrets",
            "TenantSecrets",
            "TenantSettings",
            "WeChatSecrets",
            "YouzanSecrets",
        ),
        "models",
    ),
    **dict.fromkeys(("TenantExists", "new_demo_secrets", "provision_tenant"), "provisioning"),
    **dict.fromkeys(("TenantRepository", "hash_key", "secret_name"), "repository"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
