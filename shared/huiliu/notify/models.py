"""Notify's own records: the contact projection (fed by profile.* events) and the send log."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from huiliu.contracts import ConsentEntry, ProfileSnapshot

ADDRESS_TYPES = {"email": "email", "sms": "phone", "wechat": "wechat_openid"}


class Contact(BaseModel):
    """What notify keeps of a person: contact points, consent, locale/time zone, traits to render.

    ``optout`` holds one-click unsubscribes (channel → time) until identity's own consent entry for
    the channel is newer: marketing stops at once, before the round trip through identity.
    """

    profile_id: str
    version: int = 0
    email: str | None = None
    phone: str | None = None
    wechat_openid: str | None = None
    consent: dict[str, ConsentEntry] = Field(default_factory=dict)
    optout: dict[str, str] = Field(default_factory=dict)
    locale: str | None = None
    timezone: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    merged_into: str | None = None

    def address(self, channel: str) -> str | None:
        kind = ADDRESS_TYPES.get(channel)
        return getattr(self, kind) if kind else None

    def consents(self, channel: str) -> bool:
        """Marketing consent on ``channel`` (transactional needs none)."""
        entry = self.consent.get(channel)
        if entry is None or not entry.granted:
            return False
        out = self.optout.get(channel)
        return not (out and (entry.at or "") <= out)

    @classmethod
    def from_snapshot(cls, snapshot: ProfileSnapshot) -> Contact:
        traits = dict(snapshot.traits)
        return cls(
            profile_id=snapshot.profile_id,
            version=snapshot.version,
            email=snapshot.identifier("email") or _str(traits.get("email")),
            phone=snapshot.identifier("phone"),
            wechat_openid=snapshot.identifier("wechat_openid"),
            consent=dict(snapshot.consent),
            locale=_str(traits.get("locale") or traits.get("language")),
            timezone=_str(traits.get("timezone") or traits.get("time_zone")),
            traits=traits,
        )


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


class State(StrEnum):
    CLAIMED = "claimed"  # a worker is sending it (until lease_until)
    RETRY = "retry"  # a transient error: tried again after lease_until
    DEFERRED = "deferred"  # quiet hours / over the cap / quota: tried again after lease_until
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    DROPPED = "dropped"


TERMINAL = {State.SENT, State.FAILED, State.SUPPRESSED, State.DROPPED}
# Personal fields of a send log item, removed on erasure.
PERSONAL_FIELDS = ("to", "variables", "subject")


class SendRecord(BaseModel):
    """One idempotency key's entry in the send log (claim, then outcome)."""

    idempotency_key: str
    profile_id: str
    channel: str
    state: State
    attempts: int = 0
    lease_until: int = 0  # epoch seconds: claimed → lease end; retry/deferred → not before
    purpose: str = "marketing"
    template_id: str | None = None
    journey_id: str | None = None
    enrollment_id: str | None = None
    step_id: str | None = None
    provider: str | None = None
    provider_id: str | None = None
    reason: str | None = None
    until: str | None = None
    to: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    erased: bool = False

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL
