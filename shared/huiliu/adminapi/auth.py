"""Admin API keys: ``Authorization: Bearer <key>`` → the key's record (tenant, scope), and scope rules.

Keys are stored hashed (HMAC-SHA256 with the stack's HashSalt) in the tenants table. A warm Lambda
caches what it looked up, bounded in size and in time: a found key for ``HIT_SECONDS`` (30 s), an
unknown one for ``MISS_SECONDS`` (5 s). A revoked key therefore stops working everywhere within
30 s — "within a minute" — at one GetItem (0.5 RCU) per key per warm container per 30 s.

Scopes are ordered read < write < admin. What a request needs (``required_scope``):

- ``admin``: managing keys (``/keys``), connector secrets (``/tenant/connectors``), changing
  settings (non-GET under ``/tenant``), and any prefix a router adds with ``ADMIN_PREFIXES``;
- ``write``: any other POST / PUT / PATCH / DELETE;
- ``read``: GET.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from huiliu.errors import HuiliuError, Unauthorized
from huiliu.tenants.api_keys import ApiKey
from huiliu.tenants.repository import TenantRepository, hash_key

ADMIN_PREFIXES: list[str] = ["/keys", "/tenant/connectors"]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Forbidden(HuiliuError):
    status = 403
    reason = "forbidden"


def required_scope(method: str, path: str) -> str:
    """The scope a request needs, from its method and its path after ``/admin``."""
    method = method.upper()
    if any(path == p or path.startswith(p + "/") for p in ADMIN_PREFIXES):
        return "admin"
    if method in READ_METHODS:
        return "read"
    if path == "/tenant" or path.startswith("/tenant/"):
        return "admin"
    return "write"


class KeyAuthenticator:
    HIT_SECONDS = 30.0
    MISS_SECONDS = 5.0
    MAX_ENTRIES = 4096

    def __init__(
        self,
        repo: TenantRepository,
        salt: str,
        *,
        hit_seconds: float | None = None,
        miss_seconds: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.salt = salt
        self.hit_seconds = self.HIT_SECONDS if hit_seconds is None else hit_seconds
        self.miss_seconds = self.MISS_SECONDS if miss_seconds is None else miss_seconds
        self.monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()

    def _lookup(self, digest: str) -> ApiKey | None:
        now = self.monotonic()
        hit = self._cache.get(digest)
        if hit and now < hit[0]:
            self._cache.move_to_end(digest)
            return hit[1]
        key = self.repo.api_key(digest)
        self._cache[digest] = (now + (self.hit_seconds if key else self.miss_seconds), key)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.MAX_ENTRIES:
            self._cache.popitem(last=False)
        return key

    def authenticate(self, authorization: str | None) -> ApiKey:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token", reason="missing_credentials")
        token = authorization[7:].strip()
        if not token or len(token) > 200:
            raise Unauthorized("invalid key", reason="invalid_credentials")
        key = self._lookup(hash_key(token, self.salt))
        if key is None:
            raise Unauthorized("invalid key", reason="invalid_credentials")
        return key

    def tenant_for(self, authorization: str | None) -> str:
        return self.authenticate(authorization).tenant_id

    def forget(self, key_hash: str) -> None:
        """Drop a key from this container's cache (the revoking container stops at once)."""
        self._cache.pop(key_hash, None)
