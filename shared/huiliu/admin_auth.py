"""Admin API authentication: ``Authorization: Bearer <admin key>`` → tenant id (keys stored hashed)."""

from __future__ import annotations

from huiliu.errors import Unauthorized
from huiliu.tenants import TenantRepository, hash_key


class AdminAuthenticator:
    def __init__(self, repo: TenantRepository, salt: str) -> None:
        self.repo = repo
        self.salt = salt
        self._cache: dict[str, str] = {}

    def tenant_for(self, authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token", reason="missing_credentials")
        key = authorization[7:].strip()
        digest = hash_key(key, self.salt)
        tenant = self._cache.get(digest) or self.repo.tenant_for_admin_key(digest)
        if not tenant:
            raise Unauthorized("invalid admin key", reason="invalid_credentials")
        self._cache[digest] = tenant
        return tenant
