"""Builds the admin API's collaborators once per container and settings (tests and the CLI swap the
environment: a new ``get_settings()`` object means new collaborators, with fresh AWS clients)."""

from __future__ import annotations

from typing import Any

_built: dict[str, Any] = {}


def _fresh() -> dict[str, Any]:
    from huiliu.settings import get_settings

    settings = get_settings()
    if _built.get("settings") is not settings:
        _built.clear()
        _built["settings"] = settings
    return _built


def authenticator() -> Any:
    built = _fresh()
    if "auth" not in built:
        from huiliu.adminapi.auth import KeyAuthenticator
        from huiliu.tenants.repository import TenantRepository

        settings = built["settings"]
        built["auth"] = KeyAuthenticator(TenantRepository(settings.tenants_table), settings.hash_salt)
    return built["auth"]


def key_service() -> Any:
    built = _fresh()
    if "keys" not in built:
        from huiliu.adminapi.keys import KeyService

        auth = authenticator()
        built["keys"] = KeyService(auth.repo, auth.salt, on_revoke=auth.forget)
    return built["keys"]


def secrets_client() -> Any:
    built = _fresh()
    if "secrets" not in built:
        from huiliu import aws

        built["secrets"] = aws.client("secretsmanager")
    return built["secrets"]


def reset() -> None:
    """Forget built collaborators."""
    _built.clear()
