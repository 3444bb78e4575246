"""``/admin/tenant``: the tenant's settings and connectors (secrets kept in Secrets Manager, masked here).

- ``GET /tenant``                          settings (compatibility: ``{"tenant": {...}}``)
- ``GET /tenant/settings`` / ``PUT``       the settings document (``huiliu apply`` writes it)
- ``GET /tenant/connectors``               each connector: enabled, configured, secrets masked
- ``PUT /tenant/connectors/{connector}``   replace that connector's secrets only; the others stay

Settings are read through a cache by the ingest and identity functions: a change reaches them
within their cache time (CONFIG_CACHE_SECONDS, 5 minutes by default).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from huiliu.adminapi.core import ERRORS, tenant_of
from huiliu.errors import BadRequest, NotFound
from huiliu.tenants.models import Connector, SettingsFields, TenantSecrets, TenantSettings

router = APIGatewayHttpRouter()
TAGS = ["tenant"]


class SettingsDocument(SettingsFields):
    """The settings document: every TenantSettings field except the tenant id, unknown fields refused."""

    model_config = ConfigDict(extra="forbid")


class TenantView(BaseModel):
    tenant: TenantSettings


class ConnectorView(BaseModel):
    connector: str
    enabled: bool
    configured: bool
    secrets: dict[str, Any] = Field(description="values masked: never returned in full")


class ConnectorList(BaseModel):
    connectors: list[ConnectorView]


class ConnectorSecretsBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"secrets": {"secret": "shpss_0123456789abcdef"}}]}
    )

    secrets: dict[str, Any] = Field(
        description="the connector's secret fields (huiliu.tenants.TenantSecrets)"
    )


def _repo() -> Any:
    """The tenants repository on the admin slot (huiliu.adminapi.wiring: injected as ``tenants``,
    else the key authenticator's)."""
    from huiliu.adminapi import wiring

    return wiring.services().get("tenants", lambda: wiring.authenticator().repo)


def _secrets() -> tuple[Any, str]:
    """The Secrets Manager client and the secrets' name prefix (injected as ``secrets`` and
    ``secrets_prefix``, else the real client and the settings' prefix)."""
    from huiliu.adminapi import wiring
    from huiliu.settings import get_settings

    prefix = wiring.services().get("secrets_prefix", lambda: get_settings().secrets_prefix)
    return wiring.secrets_client(), prefix


def _settings(tenant: str) -> TenantSettings:
    return _repo().get_settings(tenant) or TenantSettings(tenant_id=tenant)


def mask(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value)
    return "****" + text[-4:] if len(text) >= 16 else "****"


@router.get("/tenant", tags=TAGS, responses=ERRORS, summary="The tenant's settings (never its secrets)")
def get_tenant() -> TenantView:
    return TenantView(tenant=_settings(tenant_of(router)))


@router.get("/tenant/settings", tags=TAGS, responses=ERRORS, summary="The settings document")
def get_settings_document() -> SettingsDocument:
    return SettingsDocument.model_validate(_settings(tenant_of(router)).model_dump(exclude={"tenant_id"}))


@router.put("/tenant/settings", tags=TAGS, responses=ERRORS, summary="Replace the settings document")
def put_settings_document(
    body: SettingsDocument,
    dry_run: Annotated[bool, Query(description="validate only")] = False,
) -> SettingsDocument:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tenant = tenant_of(router)
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequest(
            f"body.timezone: unknown time zone {body.timezone!r}", reason="invalid_request"
        ) from exc
    settings = TenantSettings.model_validate({**body.model_dump(), "tenant_id": tenant})
    if not dry_run:
        _repo().put_settings(settings)
    return SettingsDocument.model_validate(settings.model_dump(exclude={"tenant_id"}))


def _connector_views(tenant: str, secrets: TenantSecrets | None) -> ConnectorList:
    settings = _settings(tenant)
    dumped = secrets.model_dump(mode="json", by_alias=True, exclude_none=True) if secrets else {}
    views = []
    for connector in Connector:
        values = dumped.get(connector.value) or {}
        views.append(
            ConnectorView(
                connector=connector.value,
                enabled=connector in settings.enabled_connectors,
                configured=connector.value in dumped or connector is Connector.CSV_IMPORT,
                secrets={k: mask(v) for k, v in values.items()},
            )
        )
    return ConnectorList(connectors=views)


@router.get("/tenant/connectors", tags=TAGS, responses=ERRORS, summary="Connectors, secrets masked")
def list_connectors() -> ConnectorList:
    from huiliu.tenants.provisioning import read_secrets

    tenant = tenant_of(router)
    client, prefix = _secrets()
    try:
        secrets = read_secrets(client, prefix, tenant)
    except client.exceptions.ResourceNotFoundException:
        secrets = None
    return _connector_views(tenant, secrets)


@router.put(
    "/tenant/connectors/<connector>", tags=TAGS, responses=ERRORS, summary="Replace one connector's secrets"
)
def put_connector_secrets(
    connector: Annotated[Connector, Path()], body: ConnectorSecretsBody
) -> ConnectorList:
    from pydantic import ValidationError

    from huiliu.adminapi.core import FieldError
    from huiliu.adminapi.wiring import authenticator
    from huiliu.tenants.provisioning import update_secrets

    tenant = tenant_of(router)
    if connector is Connector.CSV_IMPORT:
        raise BadRequest("csv-import has no secrets", reason="invalid_request")
    client, prefix = _secrets()
    try:
        updated = update_secrets(
            tenant,
            {connector.value: body.secrets},
            repo=_repo(),
            secrets_client=client,
            secrets_prefix=prefix,
            salt=authenticator().salt,
        )
    except client.exceptions.ResourceNotFoundException as exc:
        raise NotFound("the tenant has no connector secrets yet") from exc
    except ValidationError as exc:
        problems = [
            FieldError(field="body.secrets." + ".".join(str(p) for p in e["loc"][1:]), reason=e["msg"])
            for e in exc.errors(include_url=False)
        ]
        raise BadRequest(
            "invalid secrets: " + "; ".join(f"{p.field}: {p.reason}" for p in problems),
            reason="invalid_request",
        ) from exc
    return _connector_views(tenant, updated)
