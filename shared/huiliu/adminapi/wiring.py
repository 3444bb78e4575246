"""Builds the admin API's collaborators once per container (settings from the environment)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def authenticator() -> Any:
    from huiliu.adminapi.auth import KeyAuthenticator
    from huiliu.settings import get_settings
    from huiliu.tenants.repository import TenantRepository

    settings = get_settings()
    return KeyAuthenticator(TenantRepository(settings.tenants_table), settings.hash_salt)


@cache
def key_service() -> Any:
    from huiliu.adminapi.keys import KeyService

    auth = authenticator()
    return KeyService(auth.repo, auth.salt, on_revoke=auth.forget)


def reset() -> None:
    """Forget built collaborators (tests change the environment between cases)."""
    authenticator.cache_clear()
    key_service.cache_clear()
