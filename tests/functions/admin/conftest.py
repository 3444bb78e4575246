"""Two tenants with keys of every scope and a profile each, behind the real admin handler (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.functions.admin.admin_helpers import AdminClient
from tests.unit.identity.identity_helpers import make_event


@pytest.fixture
def world(deployed: Any) -> Iterator[dict[str, Any]]:
    from huiliu.adminapi.keys import KeyService
    from huiliu.identity.wiring import build_service
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantRepository
    from huiliu_infra.cli_tenants import create_tenant

    settings = get_settings()
    out: dict[str, Any] = {"client": AdminClient()}
    service = build_service()
    for tenant in ("shop-a", "shop-b"):
        created = create_tenant(
            tenant,
            table=settings.tenants_table,
            secrets_prefix=settings.secrets_prefix,
            salt=settings.hash_salt,
        )
        keys = KeyService(TenantRepository(settings.tenants_table), settings.hash_salt)
        read, read_rec = keys.create(tenant, "read", "reader")
        write, _ = keys.create(tenant, "write", "writer")
        older = service.process(
            make_event(("email", f"li@{tenant}.example"), tenant=tenant, name="Signed Up")
        )
        newer = service.process(make_event(("phone", "13800138000"), tenant=tenant, minutes=5))
        service.process(
            make_event(("email", f"li@{tenant}.example"), ("phone", "13800138000"), tenant=tenant, minutes=9)
        )
        # B alone holds li@example.com (the erase example's identifier)
        if tenant == "shop-b":
            service.process(make_event(("email", "li@example.com"), tenant=tenant, minutes=12))
        out[tenant] = {
            "admin": created["admin_key"],
            "admin_key_id": created["admin_key_id"],
            "read": read,
            "read_key_id": read_rec.key_id,
            "write": write,
            "profile_id": older.profile_id,
            "absorbed_id": newer.profile_id,
            "secrets": created["connectors"],
        }
    yield out
    from huiliu import stage
    from huiliu.adminapi.wiring import STAGE

    stage.configure(STAGE)
