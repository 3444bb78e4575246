"""Cached read access to tenants for request handlers (settings, secrets, write keys)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from huiliu.errors import NotFound
from huiliu.tenants.models import TenantSecrets, TenantSettings
from huiliu.tenants.repository import TenantRepository, hash_key, secret_name


class TenantDirectory:
    """Cached read access to tenants for request handlers (settings, secrets, write keys)."""

    # Bounded cache: at most this many entries (least recently used evicted first) …
    MAX_ENTRIES = 2048
    # … and misses (unknown tenant / write key) are remembered only briefly, so a tenant created a
    # moment ago is found soon and a flood of made-up keys cannot pin memory for long.
    MISS_SECONDS = 10

    def __init__(
        self,
        repo: TenantRepository,
        *,
        secrets_prefix: str,
        salt: str,
        cache_seconds: int = 300,
        secrets_client: Any | None = None,
        max_entries: int | None = None,
        miss_seconds: float | None = None,
    ) -> None:
        self.repo = repo
        self.secrets_prefix = secrets_prefix
        self.salt = salt
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries or self.MAX_ENTRIES
        self.miss_seconds = min(cache_seconds, self.MISS_SECONDS if miss_seconds is None else miss_seconds)
        self._secrets_client = secrets_client
        # key → (expires at, value); ordered by last use.
        self._cache: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._provider: Any = None

    # A revoked or rotated write key stops working within this many seconds (secrets/settings: longer).
    KEY_SECONDS = 60

    def _cached(self, key: str, load: Any, ttl_hit: float | None = None) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and now < hit[0]:
            self._cache.move_to_end(key)
            return hit[1]
        value = load()
        hit_ttl = self.cache_seconds if ttl_hit is None else min(ttl_hit, self.cache_seconds)
        ttl = hit_ttl if value is not None else self.miss_seconds
        self._cache[key] = (now + ttl, value)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return value

    def settings(self, tenant_id: str) -> TenantSettings:
        found = self._cached(f"settings#{tenant_id}", lambda: self.repo.get_settings(tenant_id))
        if found is None:
            raise NotFound("unknown tenant or connector", reason="not_found")
        return found

    def secrets(self, tenant_id: str) -> TenantSecrets:
        def load() -> TenantSecrets:
            raw = self._secrets_provider().get(
                secret_name(self.secrets_prefix, tenant_id), max_age=self.cache_seconds, transform="json"
            )
            return TenantSecrets.model_validate(raw)

        try:
            return self._cached(f"secrets#{tenant_id}", load)
        except Exception as exc:  # a missing secret means an unknown tenant to the caller
            if isinstance(exc, NotFound):
                raise
            from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
            from botocore.exceptions import ClientError

            if isinstance(exc, GetParameterError | ClientError):
                raise NotFound("unknown tenant or connector", reason="not_found") from exc
            raise

    def tenant_for_write_key(self, write_key: str) -> str | None:
        return self._cached(
            f"wk#{write_key}",
            lambda: self.repo.tenant_for_key_hash(hash_key(write_key, self.salt)),
            ttl_hit=self.KEY_SECONDS,
        )

    def _secrets_provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            if self._secrets_client is None:
                from huiliu import aws

                self._secrets_client = aws.client("secretsmanager")
            self._provider = SecretsProvider(boto3_client=self._secrets_client)
        return self._provider
