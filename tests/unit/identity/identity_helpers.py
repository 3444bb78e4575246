"""Identity test helpers shared by unit, function and property tests (import by module name)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.models import CanonicalEvent, DetailType, Identifier

TENANT = "acme"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def create_identity_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def create_tenants_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )


_ids = itertools.count(1)


def make_event(
    *ids: tuple[str, str],
    name: str | None = None,
    kind: str = "track",
    at: datetime | None = None,
    minutes: int = 0,
    traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    message_id: str | None = None,
    tenant: str = TENANT,
    raw_ref: str | None = None,
) -> CanonicalEvent:
    when = (at or T0) + timedelta(minutes=minutes)
    return CanonicalEvent(
        tenant_id=tenant,
        message_id=message_id or f"m-{next(_ids)}",
        type=kind if name is None or kind != "track" else "track",
        event=name,
        timestamp=when,
        received_at=when,
        source={"connector": "segment"},
        identifiers=[Identifier(type=t, value=v) for t, v in ids],
        traits=traits or {},
        properties=properties or {},
        context=context or {},
        correlation_id="corr-1",
        raw_ref=raw_ref,
    )


def ingested_body(event: CanonicalEvent, bus_id: str = "eb-1") -> str:
    """``event`` as ingest puts it on identity's queue: the ``event.ingested`` bus envelope."""
    return json.dumps(
        {
            "version": "0",
            "id": bus_id,
            "detail-type": DetailType.EVENT_INGESTED,
            "source": "huiliu.ingest",
            "account": "123456789012",
            "time": "2026-03-01T08:00:00Z",
            "region": "ap-east-1",
            "resources": [],
            "detail": event.model_dump(mode="json"),
        }
    )
