"""``GET /admin/reports``: the tenant's report, from counters (one Query of its partition; no scans)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS, tenant_of
from huiliu.reports.document import ReportDocument, build

router = APIGatewayHttpRouter()
_deps: dict[str, Any] = {}


def configure(repo: Any | None = None) -> None:
    _deps.clear()
    if repo is not None:
        _deps["repo"] = repo


def _repo() -> Any:
    if "repo" in _deps:
        return _deps["repo"]
    from huiliu.reports.repository import ReportsRepository
    from huiliu.settings import get_settings

    return ReportsRepository(get_settings().reports_table)


@router.get(
    "/reports", tags=["reports"], responses=ERRORS, summary="Funnels, segment sizes, customers, ingestion"
)
def get_report() -> ReportDocument:
    tenant = tenant_of(router)
    return build(tenant, _repo().items(tenant))
