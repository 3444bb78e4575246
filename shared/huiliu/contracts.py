"""The typed contracts of everything on the Huiliu bus — one pydantic model per detail type.

Producers build these models and publish ``model.outgoing()``; consumers parse with
:func:`parse_detail` (the stage runner does it for them). The JSON Schema of each contract is
generated into ``docs/contracts/`` (``python -m huiliu.contracts`` rewrites it; a test fails when the
checked-in copy drifts) and a sample of each lives in ``events/<stage>/``.

Rules every contract keeps (DESIGN §8):

- ``event_id`` is stable: it is derived (:func:`derive_event_id`) from the id of what caused the
  event, so a redelivered input that is processed again republishes the *same* id and a consumer can
  dedupe on it.
- every ``profile.*`` event carries the profile ``version``; SQS does not keep order, so a consumer
  keeps the newest snapshot it has seen and drops older ones (:meth:`ProfileSnapshot.is_newer_than`).
- ``replay`` marks a re-emitted snapshot (segment backfill), not a new fact.
- consumers ignore fields they do not know (``extra="ignore"``): a producer may add a field without
  breaking an older consumer; removing or retyping one is a new contract version.

Consent vocabulary: channels ``email | sms | wechat | webhook`` × purposes
``marketing | transactional``. ``consent[channel]`` on a profile is the person's *marketing* consent
on that channel; transactional messages need no consent (the suppression list still applies).
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from huiliu.bus import OutgoingEvent

# EventBridge accepts 256 KB per entry (detail, detail-type, source and envelope together).
MAX_ENTRY_BYTES = 256 * 1024
# What a detail may use of it: room left for the envelope EventBridge adds.
MAX_DETAIL_BYTES = 240 * 1024


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WECHAT = "wechat"
    WEBHOOK = "webhook"


class Purpose(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


def derive_event_id(*parts: Any) -> str:
    """A deterministic event id: the same causing inputs always give the same id."""
    raw = "\x1f".join(str(p) for p in parts)
    return "e" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:31]


class ContractModel(BaseModel):
    # defer_build: a contract's validator is built when it is first used, not when this module is
    # imported — a stage uses a few of the ~30 contracts, and building them all cost every cold
    # start ~18 ms of CPU (the admin API's segment routes, every consumer's first record).
    model_config = ConfigDict(extra="ignore", frozen=False, defer_build=True)


class BusEvent(ContractModel):
    """Fields every detail on the bus carries."""

    DETAIL_TYPE: ClassVar[str] = ""
    SOURCE: ClassVar[str] = ""

    event_id: str = Field(min_length=1, max_length=64, description="Stable id: a redelivery keeps it.")
    tenant_id: str
    correlation_id: str | None = Field(default=None, description="Follows one webhook through every stage.")
    occurred_at: str = Field(description="ISO-8601 UTC time the producer made the event.")
    replay: bool = Field(default=False, description="A re-emitted snapshot (backfill), not a new fact.")

    def outgoing(self, source: str | None = None) -> OutgoingEvent:
        return OutgoingEvent(
            source or self.SOURCE,
            self.DETAIL_TYPE,
            self.model_dump(mode="json", exclude_none=False),
        )

    def detail_bytes(self) -> int:
        return len(
            json.dumps(self.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
        )


# ---------------------------------------------------------------------------------------- profiles
class IdentifierRef(ContractModel):
    type: str
    value: str


class ConsentEntry(ContractModel):
    granted: bool
    at: str = ""


class ProfileSnapshot(ContractModel):
    """What downstream stages decide on, carried by ``profile.changed`` (DESIGN §8).

    Fields come from identity's profile item: ``identifiers`` (claimed identifiers, normalised),
    ``traits`` (survivorship by event time), ``tags``, ``consent`` (marketing consent per channel,
    latest by event time), ``computed`` (identity's computed attributes: event_count, first_seen,
    last_seen, order_count, revenue_total, first_order_at, last_order_at, avg_order_value,
    net_revenue, refund_count, refunded_total, currency, products_bought (≤ 100),
    events {name: {count, last_at}} (≤ 200 names)).
    """

    profile_id: str
    version: int = Field(ge=0)
    created_at: str | None = None
    identifiers: list[IdentifierRef] = Field(default_factory=list)
    traits: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    consent: dict[str, ConsentEntry] = Field(default_factory=dict)
    computed: dict[str, Any] = Field(default_factory=dict)

    def identifier(self, kind: str) -> str | None:
        for ident in self.identifiers:
            if ident.type == kind:
                return ident.value
        return None

    def consents(self, channel: str, purpose: str = Purpose.MARKETING) -> bool:
        """May a message of ``purpose`` go to this person on ``channel``? (suppression aside)"""
        if purpose == Purpose.TRANSACTIONAL:
            return True
        entry = self.consent.get(channel)
        return bool(entry and entry.granted)

    def is_newer_than(self, version: int | None) -> bool:
        return version is None or self.version > version


class TriggerEvent(ContractModel):
    """The canonical event that caused a ``profile.changed`` (name, properties, time)."""

    message_id: str
    type: str
    name: str | None = None
    timestamp: str
    source: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class ChangeSet(ContractModel):
    traits: dict[str, Any] = Field(default_factory=dict)
    computed: dict[str, Any] = Field(default_factory=dict)
    tags_added: list[str] = Field(default_factory=list)
    consent: dict[str, Any] = Field(default_factory=dict)
    identifiers_added: list[IdentifierRef] = Field(default_factory=list)
    tags_removed: list[str] = Field(default_factory=list, description="Tags an internal source removed.")
    # set when an admin unmerge produced this snapshot
    unmerged: str | None = None


class ProfileEvent(BusEvent):
    SOURCE: ClassVar[str] = "huiliu.identity"

    profile_id: str
    version: int = Field(default=0, ge=0, description="The profile's version after the change.")


class ProfileChanged(ProfileEvent):
    DETAIL_TYPE: ClassVar[str] = "profile.changed"

    created: bool = False
    changed: ChangeSet = Field(default_factory=ChangeSet)
    merged_from: list[str] = Field(default_factory=list)
    event: TriggerEvent | None = None
    profile: ProfileSnapshot
    # set on replays: which request asked for them (segment backfill)
    replay_id: str | None = None


class ProfileMerged(ProfileEvent):
    DETAIL_TYPE: ClassVar[str] = "profile.merged"

    absorbed_id: str
    merge_id: str
    linking_identifiers: list[IdentifierRef] = Field(default_factory=list)


class ProfileUnmerged(ProfileEvent):
    DETAIL_TYPE: ClassVar[str] = "profile.unmerged"

    restored_id: str
    merge_id: str
    identifiers_returned: list[IdentifierRef] = Field(default_factory=list)


class ProfileErased(ProfileEvent):
    DETAIL_TYPE: ClassVar[str] = "profile.erased"

    profile_ids: list[str] = Field(default_factory=list, description="Every id erased (absorbed too).")
    identifier_count: int = 0


class IdentityConflict(ProfileEvent):
    DETAIL_TYPE: ClassVar[str] = "identity.conflict"

    identifier: IdentifierRef | None = None
    reason: str
    held_by: str | None = None
    message_id: str | None = None


class ReplayRequested(BusEvent):
    """Ask identity to re-emit a tenant's profiles as ``profile.changed`` with ``replay=True``.

    Identity answers one page per request and, while profiles remain, requests the next page itself
    (``cursor``), so a replay is resumable and never holds one invocation for long.
    """

    DETAIL_TYPE: ClassVar[str] = "profiles.replay_requested"
    SOURCE: ClassVar[str] = "huiliu.segments"

    replay_id: str = Field(description="Names the replay; carried by every snapshot it emits.")
    requester: str = Field(description="Who asked (e.g. 'segment:vip@3').")
    cursor: str | None = None
    page: int = 0
    page_size: int = Field(default=100, ge=1, le=500)
    emitted: int = Field(default=0, ge=0, description="Snapshots emitted by the earlier pages.")


class ReplayCompleted(BusEvent):
    DETAIL_TYPE: ClassVar[str] = "profiles.replay_completed"
    SOURCE: ClassVar[str] = "huiliu.identity"

    replay_id: str
    requester: str
    profiles: int = 0
    pages: int = 0


# ---------------------------------------------------------------------------------------- segments
class SegmentTransition(BusEvent):
    SOURCE: ClassVar[str] = "huiliu.segments"

    segment_id: str
    segment_version: int = 0
    profile_id: str
    profile_version: int = 0
    reason: str = Field(description="conditions | time | merge | unmerge | erase | definition")
    backfill: bool = Field(default=False, description="Produced by a backfill over existing profiles.")
    profile: ProfileSnapshot | None = None


class SegmentEntered(SegmentTransition):
    DETAIL_TYPE: ClassVar[str] = "segment.entered"


class SegmentExited(SegmentTransition):
    DETAIL_TYPE: ClassVar[str] = "segment.exited"


# ----------------------------------------------------------------------------------- notifications
class NotificationRequested(BusEvent):
    """A message to send (journeys, or the admin API for transactional mail)."""

    DETAIL_TYPE: ClassVar[str] = "notification.requested"
    SOURCE: ClassVar[str] = "huiliu.journeys"

    idempotency_key: str = Field(min_length=1, max_length=200, description="One send per key, ever.")
    profile_id: str
    channel: Channel
    fallback: list[Channel] = Field(default_factory=list)
    template_id: str
    purpose: Purpose = Purpose.MARKETING
    priority: int = Field(default=0, ge=0, le=100)
    locale: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    journey_id: str | None = None
    journey_version: int | None = None
    enrollment_id: str | None = None
    step_id: str | None = None


class NotificationOutcome(BusEvent):
    SOURCE: ClassVar[str] = "huiliu.notify"

    idempotency_key: str
    profile_id: str
    channel: Channel
    template_id: str | None = None
    purpose: Purpose = Purpose.MARKETING
    journey_id: str | None = None
    enrollment_id: str | None = None
    step_id: str | None = None
    reason: str | None = None
    provider: str | None = None
    provider_id: str | None = None
    until: str | None = Field(default=None, description="deferred: when it will be tried again")


class NotificationSent(NotificationOutcome):
    DETAIL_TYPE: ClassVar[str] = "notification.sent"


class NotificationSuppressed(NotificationOutcome):
    DETAIL_TYPE: ClassVar[str] = "notification.suppressed"


class NotificationDeferred(NotificationOutcome):
    DETAIL_TYPE: ClassVar[str] = "notification.deferred"


class NotificationFailed(NotificationOutcome):
    DETAIL_TYPE: ClassVar[str] = "notification.failed"


class NotificationFeedback(NotificationOutcome):
    """What the provider said about a send after it left (SES event publishing → functions/feedback).

    Keyed by the send's ``idempotency_key``; the send-log fields (journey, step, template, channel)
    come from notify's send log. Published **once per send and kind**: a second open or click of the
    same mail, or SES repeating an event, adds nothing (so funnels count unique opens and clicks).
    """

    SOURCE: ClassVar[str] = "huiliu.feedback"

    provider_event_at: str | None = Field(default=None, description="when the provider saw it (ISO-8601)")
    link: str | None = Field(default=None, description="clicked: the link")
    bounce_type: str | None = Field(default=None, description="bounced: Permanent | Transient | Undetermined")
    bounce_subtype: str | None = None
    feedback_type: str | None = Field(default=None, description="complained: abuse, fraud, ...")


class NotificationDelivered(NotificationFeedback):
    DETAIL_TYPE: ClassVar[str] = "notification.delivered"


class NotificationOpened(NotificationFeedback):
    DETAIL_TYPE: ClassVar[str] = "notification.opened"


class NotificationClicked(NotificationFeedback):
    DETAIL_TYPE: ClassVar[str] = "notification.clicked"


class NotificationBounced(NotificationFeedback):
    DETAIL_TYPE: ClassVar[str] = "notification.bounced"


class NotificationComplained(NotificationFeedback):
    DETAIL_TYPE: ClassVar[str] = "notification.complained"


# feedback kind (SES ``eventType``) → contract
FEEDBACK_CONTRACTS: dict[str, type[NotificationFeedback]] = {
    "Delivery": NotificationDelivered,
    "Open": NotificationOpened,
    "Click": NotificationClicked,
    "Bounce": NotificationBounced,
    "Complaint": NotificationComplained,
}


# ---------------------------------------------------------------------------------------- registry
class EventIngested(ContractModel):
    """``event.ingested``: the detail is a :class:`huiliu.models.CanonicalEvent` (see its schema).

    Listed here so the registry names every detail type; parsing goes to CanonicalEvent.
    """

    DETAIL_TYPE: ClassVar[str] = "event.ingested"


CONTRACTS: dict[str, type[BaseModel]] = {}


def register(model: type[BaseModel]) -> type[BaseModel]:
    detail_type = model.DETAIL_TYPE  # type: ignore[attr-defined]
    if detail_type in CONTRACTS and CONTRACTS[detail_type] is not model:
        raise ValueError(f"two contracts for {detail_type}")
    CONTRACTS[detail_type] = model
    return model


for _model in (
    ProfileChanged,
    ProfileMerged,
    ProfileUnmerged,
    ProfileErased,
    IdentityConflict,
    ReplayRequested,
    ReplayCompleted,
    SegmentEntered,
    SegmentExited,
    NotificationRequested,
    NotificationSent,
    NotificationSuppressed,
    NotificationDeferred,
    NotificationFailed,
):
    register(_model)
for _feedback in FEEDBACK_CONTRACTS.values():
    register(_feedback)


class ArchiveEraseRequested(BusEvent):
    """Identity's erase → the raw archive: the refs of the person's archived requests (≤ 500 per
    event; an erasure with more sends several). Refs name no person (tenant, connector, receive
    time, delivery id); functions/archive_erase removes the records (docs/cost.md)."""

    DETAIL_TYPE: ClassVar[str] = "archive.erase_requested"
    SOURCE: ClassVar[str] = "huiliu.identity"

    raw_refs: list[str] = Field(default_factory=list, max_length=500)


register(ArchiveEraseRequested)


class UnknownDetailType(ValueError):
    pass


def contract_for(detail_type: str) -> type[BaseModel]:
    if detail_type == EventIngested.DETAIL_TYPE:
        from huiliu.models import CanonicalEvent

        return CanonicalEvent
    try:
        return CONTRACTS[detail_type]
    except KeyError:
        raise UnknownDetailType(f"no contract for detail-type {detail_type!r}") from None


def parse_detail(detail_type: str, detail: dict[str, Any]) -> BaseModel:
    """The typed event for an EventBridge ``detail`` (raises pydantic's ValidationError)."""
    return contract_for(detail_type).model_validate(detail)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every contract, by detail type (``event.ingested`` included)."""
    out = {t: m.model_json_schema(mode="serialization") for t, m in sorted(CONTRACTS.items())}
    out[EventIngested.DETAIL_TYPE] = contract_for(EventIngested.DETAIL_TYPE).model_json_schema(
        mode="serialization"
    )
    return dict(sorted(out.items()))


def write_schemas(folder: str) -> list[str]:
    """Write ``<detail-type>.schema.json`` for every contract into ``folder``; returns the names."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for detail_type, schema in json_schemas().items():
        name = f"{detail_type}.schema.json"
        (out / name).write_text(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        names.append(name)
    return names


if __name__ == "__main__":  # python -m huiliu.contracts [docs/contracts]
    import sys

    print("\n".join(write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs/contracts")))
