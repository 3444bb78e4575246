"""``GET /admin/reports``: the tenant's report, from counters (one Query of its partition; no scans)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS, tenant_of
from huiliu.reports.document import ReportDocument, build

router = APIGatewayHttpRouter()


def _build_repo() -> Any:
    from huiliu.reports.repository import ReportsRepository
    from huiliu.settings import get_settings

    return ReportsRepository(get_settings().reports_table)


def _repo() -> Any:
    """The ReportsRepository on the admin slot (huiliu.adminapi.wiring: injected, else built)."""
    from huiliu.adminapi.wiring import services

    return services().get("reports", _build_repo)


@router.get(
    "/reports", tags=["reports"], responses=ERRORS, summary="Funnels, segment sizes, customers, ingestion"
)
def get_report() -> ReportDocument:
    tenant = tenant_of(router)
    return build(tenant, _repo().items(tenant))
