"""An admin API key's record and its scopes: apart from the tenant settings models, because every
admin and ops request authenticates a key and most never read a tenant's settings (cold start)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Scope = Literal["read", "write", "admin"]
SCOPE_RANK: dict[str, int] = {"read": 1, "write": 2, "admin": 3}


class ApiKey(BaseModel):
    """An admin API key's record: the key itself is shown once at creation, only its hash is kept."""

    model_config = {"extra": "ignore"}

    key_id: str
    key_hash: str
    tenant_id: str
    scope: Scope
    name: str = ""
    created_at: str
    prefix: str = ""  # the key's first characters, to recognise it in a list

    def allows(self, needed: str) -> bool:
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[needed]
