"""``/admin/keys``: the tenant's own API keys (admin scope). A key is shown once, at creation."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS, tenant_of
from huiliu.adminapi.keys import CreatedKey, CreateKeyBody, KeyList, KeyService, RevokedKey

router = APIGatewayHttpRouter()
TAGS = ["keys"]
KeyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def _service() -> KeyService:
    from huiliu.adminapi import wiring

    return wiring.key_service()


@router.get("/keys", tags=TAGS, responses=ERRORS, summary="List the tenant's keys (never the keys)")
def list_keys() -> KeyList:
    return _service().list(tenant_of(router))


@router.post("/keys", tags=TAGS, responses=ERRORS, summary="Create a key (shown once)")
def create_key(body: CreateKeyBody) -> CreatedKey:
    return _service().created(tenant_of(router), body.scope, body.name)


@router.post("/keys/<key_id>/rotate", tags=TAGS, responses=ERRORS, summary="Replace a key (old one revoked)")
def rotate_key(key_id: KeyId) -> CreatedKey:
    return _service().rotate(tenant_of(router), key_id)


@router.delete("/keys/<key_id>", tags=TAGS, responses=ERRORS, summary="Revoke a key")
def revoke_key(key_id: KeyId) -> RevokedKey:
    return _service().revoke(tenant_of(router), key_id)
