"""Builds the checked-in samples of every bus contract (``events/<stage>/<detail-type>.json``).

``python -m tests.unit.contracts.samples`` rewrites them; test_contracts checks they parse and that
every contract has one. Profile samples come from running the real identity service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.clock import ManualClock
from huiliu.contracts import (
    FEEDBACK_CONTRACTS,
    NotificationDeferred,
    NotificationFailed,
    NotificationRequested,
    NotificationSent,
    NotificationSuppressed,
    ProfileSnapshot,
    ReplayCompleted,
    ReplayRequested,
    SegmentEntered,
    SegmentExited,
    derive_event_id,
)
from huiliu.identity.admin import ProfileAdmin
from huiliu.identity.repository import MemoryIdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import Identifier

from tests.unit.identity.identity_helpers import T0, TENANT, make_event

ROOT = Path(__file__).resolve().parents[3]
STAGE_OF_SOURCE = {
    "huiliu.identity": "identity",
    "huiliu.segments": "segments",
    "huiliu.journeys": "journeys",
    "huiliu.notify": "notify",
    "huiliu.feedback": "feedback",
}


def envelope(event: OutgoingEvent) -> dict[str, Any]:
    """The EventBridge event a rule delivers to a queue (what an SQS record body holds)."""
    return {
        "version": "0",
        "id": derive_event_id("sample", event.detail_type),
        "detail-type": event.detail_type,
        "source": event.source,
        "account": "123456789012",
        "time": "2026-03-01T08:00:00Z",
        "region": "ap-east-1",
        "resources": [],
        "detail": event.detail,
    }


def identity_samples() -> list[OutgoingEvent]:
    clock = ManualClock(T0)
    repo = MemoryIdentityRepository(salt="sample")
    service = IdentityService(repo, clock=clock, salt="sample")
    out: list[OutgoingEvent] = []
    first = service.process(
        make_event(
            ("anonymous_id", "anon-1"),
            name="Product Viewed",
            properties={"product_id": "A"},
            message_id="m-1",
        )
    )
    second = service.process(
        make_event(
            ("email", "li.lei@example.com"),
            ("phone", "+8613800138000"),
            kind="identify",
            traits={"name": "Li Lei", "consent": {"email": True, "sms": False}, "tags": ["vip"]},
            message_id="m-2",
            minutes=1,
            raw_ref="raw/acme/segment/2026/03/01/080100-req-2.json",
        )
    )
    linked = service.process(
        make_event(
            ("anonymous_id", "anon-1"),
            ("email", "li.lei@example.com"),
            name="Order Completed",
            properties={
                "order_id": "O-1",
                "revenue": 199,
                "currency": "CNY",
                "products": [{"product_id": "A"}],
            },
            message_id="m-3",
            minutes=2,
        )
    )
    out += linked.events + first.events[:1] + second.events[:1]
    for n, member in enumerate(("M-1", "M-2")):  # a second member id for one person: a conflict
        done = service.process(
            make_event(
                ("phone", "+8613800138000"), ("member_id", member), message_id=f"m-c{n}", minutes=3 + n
            )
        )
        out += [e for e in done.events if e.detail_type == "identity.conflict"]
    admin = ProfileAdmin(repo, clock=clock)
    merge_id = next(e.detail["merge_id"] for e in linked.events if e.detail_type == "profile.merged")
    unmerged = admin.unmerge(TENANT, linked.profile_id or "", merge_id=merge_id)
    out += unmerged.events[:1]
    erased = admin.erase(TENANT, Identifier(type="email", value="li.lei@example.com"))
    out += erased.events
    return out


def other_samples(profile: dict[str, Any]) -> list[OutgoingEvent]:
    base = {"tenant_id": TENANT, "correlation_id": "req-1", "occurred_at": "2026-03-01T08:05:00+00:00"}
    snap = ProfileSnapshot.model_validate(profile)
    note = {
        **base,
        "idempotency_key": "j-welcome@1#enr-1#s-coupon",
        "profile_id": snap.profile_id,
        "channel": "sms",
        "template_id": "coupon",
        "journey_id": "welcome",
        "enrollment_id": "enr-1",
        "step_id": "s-coupon",
    }
    return [
        ReplayRequested(
            **base, event_id=derive_event_id("r1", "page", ""), replay_id="r1", requester="segment:vip@1"
        ).outgoing(),
        ReplayCompleted(
            **base,
            event_id=derive_event_id("r1", "completed"),
            replay_id="r1",
            requester="segment:vip@1",
            profiles=1,
            pages=1,
        ).outgoing(),
        SegmentEntered(
            **base,
            event_id=derive_event_id("seg-in"),
            segment_id="vip",
            segment_version=1,
            profile_id=snap.profile_id,
            profile_version=snap.version,
            reason="conditions",
            profile=snap,
        ).outgoing(),
        SegmentExited(
            **base,
            event_id=derive_event_id("seg-out"),
            segment_id="ordered-30d",
            segment_version=2,
            profile_id=snap.profile_id,
            profile_version=snap.version,
            reason="time",
        ).outgoing(),
        NotificationRequested(
            **{
                **note,
                "channel": "sms",
                "fallback": ["email"],
                "priority": 50,
                "variables": {"coupon_code": "WELCOME10"},
                "journey_version": 1,
                "locale": "zh-CN",
            },
            event_id=derive_event_id("nr"),
        ).outgoing(),
        NotificationSent(
            **note, event_id=derive_event_id("ns"), provider="aliyun-sms", provider_id="pm-1"
        ).outgoing(),
        NotificationSuppressed(**note, event_id=derive_event_id("nsu"), reason="no_consent").outgoing(),
        NotificationDeferred(
            **note, event_id=derive_event_id("nd"), reason="quiet_hours", until="2026-03-02T00:00:00+00:00"
        ).outgoing(),
        NotificationFailed(
            **note,
            event_id=derive_event_id("nf"),
            reason="provider_rejected:isv.MOBILE_NUMBER_ILLEGAL",
            provider="aliyun-sms",
        ).outgoing(),
        *feedback_samples(base, note),
    ]


def feedback_samples(base: dict[str, Any], note: dict[str, Any]) -> list[OutgoingEvent]:
    """What functions/feedback publishes for an email send, once per send and kind."""
    mail = {**note, "channel": "email", "provider": "ses", "provider_id": "0102018f-ses-message-id"}
    extra = {
        "Click": {"link": "https://shop.example/welcome?c=WELCOME10"},
        "Bounce": {"bounce_type": "Permanent", "bounce_subtype": "General"},
        "Complaint": {"feedback_type": "abuse"},
    }
    return [
        contract(
            **{**base, **mail},
            **extra.get(kind, {}),
            event_id=derive_event_id(TENANT, mail["idempotency_key"], contract.DETAIL_TYPE),
            provider_event_at="2026-03-01T08:06:00+00:00",
        ).outgoing()
        for kind, contract in FEEDBACK_CONTRACTS.items()
    ]


def all_samples() -> dict[str, dict[str, Any]]:
    identity = identity_samples()
    changed = next(
        e for e in identity if e.detail_type == "profile.changed" and e.detail["profile"]["traits"]
    )
    samples: dict[str, dict[str, Any]] = {}
    for event in [*identity, *other_samples(changed.detail["profile"])]:
        stage = STAGE_OF_SOURCE[event.source]
        samples.setdefault(f"{stage}/{event.detail_type}.json", envelope(event))
    return samples


def write() -> list[str]:
    written = []
    for rel, body in all_samples().items():
        path = ROOT / "events" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        written.append(rel)
    return written


if __name__ == "__main__":
    print("\n".join(write()))
