"""The tenants table: settings, the write-key index and API keys (stored hashed)."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from huiliu.errors import ConditionFailed
from huiliu.storage.dynamo import DynamoRepository
from huiliu.tenants.api_keys import ApiKey

if TYPE_CHECKING:
    from huiliu.tenants.models import TenantSettings


def hash_key(value: str, salt: str) -> str:
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()


def secret_name(prefix: str, tenant_id: str) -> str:
    return f"{prefix}/tenants/{tenant_id}"


class TenantRepository(DynamoRepository):
    """Tenant settings, the write-key index and API keys in the tenants table."""

    def get_settings(self, tenant_id: str) -> TenantSettings | None:
        item = self.get(f"T#{tenant_id}", "SETTINGS", consistent=False)
        from huiliu.tenants.models import TenantSettings  # not at import: key lookups never need it

        return TenantSettings.model_validate(item["settings"]) if item else None

    def put_settings(self, settings: TenantSettings) -> None:
        self.put(
            {"pk": f"T#{settings.tenant_id}", "sk": "SETTINGS", "settings": settings.model_dump(mode="json")}
        )

    def tenant_for_key_hash(self, key_hash: str) -> str | None:
        item = self.get(f"WRITEKEY#{key_hash}", "WRITEKEY", consistent=False)
        return item["tenant_id"] if item else None

    def put_write_key(self, key_hash: str, tenant_id: str) -> None:
        try:
            self.put(
                {"pk": f"WRITEKEY#{key_hash}", "sk": "WRITEKEY", "tenant_id": tenant_id},
                condition="attribute_not_exists(pk) OR tenant_id = :t",
                values={":t": tenant_id},
            )
        except ConditionFailed as exc:
            raise ValueError("write key already belongs to another tenant") from exc

    def delete_write_key(self, key_hash: str, tenant_id: str) -> None:
        item = self.get(f"WRITEKEY#{key_hash}", "WRITEKEY")
        if item and item.get("tenant_id") == tenant_id:
            self.delete(f"WRITEKEY#{key_hash}", "WRITEKEY")

    # -- API keys (admin API): stored hashed, scoped to a tenant and to read | write | admin ---------
    # APIKEY#{hash} / APIKEY          → the key's record (looked up per request, cached briefly)
    # T#{tenant}    / APIKEY#{key_id} → the same record by id (list, revoke); never the key itself
    def api_key(self, key_hash: str) -> ApiKey | None:
        item = self.get(f"APIKEY#{key_hash}", "APIKEY", consistent=False)
        return ApiKey.model_validate(item) if item else None

    def put_api_key(self, key: ApiKey) -> None:
        """Both rows in one transaction (2 items, 4 WCU); the hash row must be new."""
        record = key.model_dump(mode="json")
        self.transact(
            [
                {
                    "Put": {
                        "item": {"pk": f"APIKEY#{key.key_hash}", "sk": "APIKEY", **record},
                        "condition": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"item": {"pk": f"T#{key.tenant_id}", "sk": f"APIKEY#{key.key_id}", **record}}},
            ]
        )

    def api_keys(self, tenant_id: str) -> list[ApiKey]:
        rows = self.query_all(f"T#{tenant_id}", sk_prefix="APIKEY#", consistent=True)
        return [ApiKey.model_validate(r) for r in rows]

    def api_key_by_id(self, tenant_id: str, key_id: str) -> ApiKey | None:
        item = self.get(f"T#{tenant_id}", f"APIKEY#{key_id}")
        return ApiKey.model_validate(item) if item else None

    def delete_api_key(self, key: ApiKey) -> None:
        self.transact(
            [
                {"Delete": {"pk": f"APIKEY#{key.key_hash}", "sk": "APIKEY"}},
                {"Delete": {"pk": f"T#{key.tenant_id}", "sk": f"APIKEY#{key.key_id}"}},
            ]
        )

    def put_admin_key(self, key_hash: str, tenant_id: str) -> None:
        """An admin-scope key given by its hash (tests, migration)."""
        from huiliu.clock import utcnow

        self.put_api_key(
            ApiKey(
                key_id=key_hash[:12],
                key_hash=key_hash,
                tenant_id=tenant_id,
                scope="admin",
                name="admin",
                created_at=utcnow().isoformat(),
            )
        )
