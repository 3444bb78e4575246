"""The canonical event (DESIGN §2) and the envelopes that travel on the bus.

Connectors translate every source into :class:`CanonicalEvent`; it is shaped after the Segment
Spec so any Segment/RudderStack client can send to Huiliu unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from huiliu.identifiers import InvalidIdentifier, is_valid_type, normalize

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class EventType(StrEnum):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    ALIAS = "alias"
    GROUP = "group"


class Identifier(BaseModel):
    """One (type, value) pair; ``value`` is already normalised."""

    model_config = ConfigDict(frozen=True)

    type: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.type}#{self.value}"


class Source(BaseModel):
    model_config = ConfigDict(frozen=True)

    connector: str
    account: str | None = None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class CanonicalEvent(BaseModel):
    """One thing that happened to (or was learnt about) one person, from any source."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    message_id: str = Field(min_length=1, max_length=200)
    type: EventType
    event: str | None = Field(default=None, max_length=200)
    timestamp: datetime
    received_at: datetime
    source: Source
    identifiers: list[Identifier] = Field(default_factory=list)
    traits: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    # Follows the event from the webhook through every function's logs.
    correlation_id: str | None = None
    # Where the raw request is archived (s3 key), so the event can be replayed.
    raw_ref: str | None = None

    @field_validator("timestamp", "received_at")
    @classmethod
    def _tz(cls, value: datetime) -> datetime:
        return _aware(value)

    @property
    def dedupe_key(self) -> str:
        return f"{self.tenant_id}#{self.source.connector}#{self.message_id}"

    def identifier(self, kind: str) -> str | None:
        for ident in self.identifiers:
            if ident.type == kind:
                return ident.value
        return None


def build_identifiers(
    pairs: list[tuple[str, object]] | dict[str, object], default_region: str = "CN"
) -> list[Identifier]:
    """Normalise raw (type, value) pairs; drops values that cannot be identifiers, dedupes."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    seen: set[tuple[str, str]] = set()
    result: list[Identifier] = []
    for kind, raw in items:
        if raw is None or raw == "" or not is_valid_type(kind):
            continue
        try:
            value = normalize(kind, raw, default_region)
        except InvalidIdentifier:
            continue
        if (kind, value) not in seen:
            seen.add((kind, value))
            result.append(Identifier(type=kind, value=value))
    return result


# detail-type names on the bus (rules in template.yaml match these).
class DetailType(StrEnum):
    EVENT_INGESTED = "event.ingested"
    PROFILE_CHANGED = "profile.changed"
    PROFILE_MERGED = "profile.merged"
    PROFILE_UNMERGED = "profile.unmerged"
    PROFILE_ERASED = "profile.erased"
    IDENTITY_CONFLICT = "identity.conflict"
    SEGMENT_ENTERED = "segment.entered"
    SEGMENT_EXITED = "segment.exited"
    NOTIFICATION_REQUESTED = "notification.requested"
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_FAILED = "notification.failed"
