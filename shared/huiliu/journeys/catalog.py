"""What a journey may reference, looked up when it is applied (the admin API, read-only).

- **Templates are notify's.** They live in TenantsTable (``T#{tenant}`` / ``TEMPLATE#{id}``, see
  ``huiliu.notify.template_store``); the admin function reads their ids at apply time, so a
  journey naming a template that does not exist is refused. Journeys keeps no copy: a template
  deleted later is notify's to report (``notification.failed`` with reason ``unknown_template``).
- **Segments are the segments stage's.** Their definitions live in SegmentsTable
  (``T#{tenant}#SEG`` / ``DEF#{id}``); the admin function (read-only on that table) lists the ids.
- The tenant's longest wait comes from its settings (``journey_max_wait_days``).

The journeys and journey-tick functions never read these tables: the check happens once, at apply.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from huiliu.journeys.conditions import compile_condition
from huiliu.journeys.definition import Catalog
from huiliu.storage.dynamo import DynamoRepository


def segment_ids(repo: DynamoRepository, tenant: str) -> set[str]:
    try:
        from huiliu.segments.repository import seg_pk
    except ImportError:  # pragma: no cover - segments always ships with journeys
        pk = f"T#{tenant}#SEG"
    else:
        pk = seg_pk(tenant)
    return {item["sk"].removeprefix("DEF#") for item in repo.query_all(pk, sk_prefix="DEF#")}


def template_ids(repo: DynamoRepository, tenant: str) -> set[str]:
    return {
        item["sk"].removeprefix("TEMPLATE#") for item in repo.query_all(f"T#{tenant}", sk_prefix="TEMPLATE#")
    }


def build_catalog(tenant: str, *, settings: Any = None) -> Catalog:
    """The live catalog for one tenant (admin function: reads TenantsTable and SegmentsTable)."""
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantRepository

    env = settings or get_settings()
    tenants = TenantRepository(env.tenants_table)
    tenant_settings = tenants.get_settings(tenant)
    max_days = tenant_settings.journey_max_wait_days if tenant_settings else 365
    return Catalog(
        segments=segment_ids(DynamoRepository(env.segments_table), tenant),
        templates=template_ids(tenants, tenant),
        max_wait=timedelta(days=max_days),
        compile_condition=compile_condition,
    )
