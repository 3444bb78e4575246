"""API key lifecycle: create (shown once), list, rotate, revoke. Pure over TenantRepository."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from huiliu.clock import Clock, default_clock
from huiliu.errors import NotFound
from huiliu.tenants.api_keys import ApiKey, Scope
from huiliu.tenants.repository import TenantRepository, hash_key

KEY_PREFIX = "hl_"


class CreateKeyBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scope": "read", "name": "bi"}]}
    )

    scope: Literal["read", "write", "admin"]
    name: str = Field(default="", max_length=80)


class KeyInfo(BaseModel):
    """A key as listed: never the key, never its hash."""

    key_id: str
    scope: Scope
    name: str
    created_at: str
    prefix: str


class CreatedKey(KeyInfo):
    key: str = Field(description="the key itself: shown once, stored only hashed")


class KeyList(BaseModel):
    keys: list[KeyInfo]


class RevokedKey(BaseModel):
    key_id: str
    revoked: Literal[True] = True
    effective_within_seconds: int


def info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        key_id=key.key_id, scope=key.scope, name=key.name, created_at=key.created_at, prefix=key.prefix
    )


class KeyService:
    # what a revocation takes to reach every warm container (the authenticator's cache, rounded up)
    REVOCATION_SECONDS = 30

    def __init__(
        self,
        repo: TenantRepository,
        salt: str,
        clock: Clock | None = None,
        on_revoke: Callable[[str], None] | None = None,
    ) -> None:
        self.on_revoke = on_revoke  # e.g. drop the hash from this container's auth cache
        self.repo = repo
        self.salt = salt
        self.clock = clock or default_clock()

    def create(self, tenant_id: str, scope: str, name: str = "") -> tuple[str, ApiKey]:
        token = KEY_PREFIX + scope[0] + "_" + secrets.token_urlsafe(32)
        record = ApiKey(
            key_id=secrets.token_hex(6),
            key_hash=hash_key(token, self.salt),
            tenant_id=tenant_id,
            scope=scope,  # type: ignore[arg-type]
            name=name,
            created_at=self.clock.now().isoformat(timespec="seconds"),
            prefix=token[:10],
        )
        self.repo.put_api_key(record)
        return token, record

    def created(self, tenant_id: str, scope: str, name: str = "") -> CreatedKey:
        token, record = self.create(tenant_id, scope, name)
        return CreatedKey(key=token, **info(record).model_dump())

    def list(self, tenant_id: str) -> KeyList:
        return KeyList(
            keys=[info(k) for k in sorted(self.repo.api_keys(tenant_id), key=lambda k: k.created_at)]
        )

    def _get(self, tenant_id: str, key_id: str) -> ApiKey:
        key = self.repo.api_key_by_id(tenant_id, key_id)
        if key is None:  # another tenant's key id looks exactly like an unknown one
            raise NotFound(f"no key {key_id}")
        return key

    def revoke(self, tenant_id: str, key_id: str) -> RevokedKey:
        self._drop(self._get(tenant_id, key_id))
        return RevokedKey(key_id=key_id, effective_within_seconds=self.REVOCATION_SECONDS)

    def rotate(self, tenant_id: str, key_id: str) -> CreatedKey:
        """A new key with the same scope and name; the old one is revoked."""
        old = self._get(tenant_id, key_id)
        fresh = self.created(tenant_id, old.scope, old.name)
        self._drop(old)
        return fresh

    def _drop(self, key: ApiKey) -> None:
        self.repo.delete_api_key(key)
        if self.on_revoke is not None:
            self.on_revoke(key.key_hash)
