"""``/ops``: operator routes across tenants, authenticated by AWS IAM (SigV4), never by a tenant key.

API Gateway checks the SigV4 signature (the HttpApi route's ``AWS_IAM`` authorizer) and puts the
caller's IAM identity on the request; the ops function refuses any request without it. Who may
call is an IAM policy on ``execute-api:Invoke`` for ``arn:aws:execute-api:…/*/*/ops/*``.

- ``GET    /ops/tenants/{tenant}/keys``             a tenant's keys (never the keys)
- ``POST   /ops/tenants/{tenant}/keys``             create a key for a tenant (shown once)
- ``DELETE /ops/tenants/{tenant}/keys/{key_id}``    revoke a tenant's key
- ``GET    /ops/tenants/{tenant}/report``           a tenant's report
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS
from huiliu.adminapi.keys import CreatedKey, CreateKeyBody, KeyList, RevokedKey
from huiliu.models import TENANT_ID_PATTERN
from huiliu.reports.document import ReportDocument

router = APIGatewayHttpRouter()
TAGS = ["ops"]
Tenant = Annotated[str, Path(pattern=TENANT_ID_PATTERN, max_length=64)]
KeyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def _keys() -> Any:
    from huiliu.adminapi import wiring

    return wiring.key_service()


@router.get("/tenants/<tenant>/keys", tags=TAGS, responses=ERRORS, summary="A tenant's keys")
def list_keys(tenant: Tenant) -> KeyList:
    return _keys().list(tenant)


@router.post("/tenants/<tenant>/keys", tags=TAGS, responses=ERRORS, summary="Create a key for a tenant")
def create_key(tenant: Tenant, body: CreateKeyBody) -> CreatedKey:
    from huiliu.adminapi import wiring
    from huiliu.errors import NotFound

    if wiring.authenticator().repo.get_settings(tenant) is None:
        raise NotFound(f"no tenant {tenant}")
    return _keys().created(tenant, body.scope, body.name)


@router.delete("/tenants/<tenant>/keys/<key_id>", tags=TAGS, responses=ERRORS, summary="Revoke a key")
def revoke_key(tenant: Tenant, key_id: KeyId) -> RevokedKey:
    return _keys().revoke(tenant, key_id)


@router.get("/tenants/<tenant>/report", tags=TAGS, responses=ERRORS, summary="A tenant's report")
def report(tenant: Tenant) -> ReportDocument:
    from huiliu.reports.document import build
    from huiliu.reports.repository import ReportsRepository
    from huiliu.settings import get_settings

    return build(tenant, ReportsRepository(get_settings().reports_table).items(tenant))
