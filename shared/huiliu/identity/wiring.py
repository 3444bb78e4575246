"""Builds the real identity collaborators from settings (handlers call this once, lazily)."""

from __future__ import annotations

from collections.abc import Callable

from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.tenants import TenantSettings


def tenant_settings_lookup() -> Callable[[str], TenantSettings]:
    """Cached tenant settings; an unknown tenant gets the defaults rather than failing."""
    from huiliu.errors import NotFound
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantDirectory, TenantRepository

    settings = get_settings()
    directory = TenantDirectory(
        TenantRepository(settings.tenants_table),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
        cache_seconds=settings.config_cache_seconds,
    )
    defaults: dict[str, TenantSettings] = {}

    def lookup(tenant: str) -> TenantSettings:
        try:
            return directory.settings(tenant)
        except NotFound:
            return defaults.setdefault(tenant, TenantSettings(tenant_id=tenant))

    return lookup


def build_repository() -> IdentityRepository:
    from huiliu.settings import get_settings

    settings = get_settings()
    return IdentityRepository(settings.identity_table, salt=settings.hash_salt)


def build_service() -> IdentityService:
    from huiliu.settings import get_settings

    settings = get_settings()
    return IdentityService(
        build_repository(),
        settings_for=tenant_settings_lookup(),
        salt=settings.hash_salt,
        retention_days=settings.timeline_retention_days,
    )
