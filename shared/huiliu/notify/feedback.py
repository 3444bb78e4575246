"""Delivery feedback: SES events (configuration set → EventBridge) and one-click unsubscribes.

- Permanent bounces and complaints put the address on the suppression list (hashed, per tenant):
  nothing more goes to it, transactional included. Transient bounces do not.
- Delivery, open, click and bounce come back in as canonical track events — "Email Delivered",
  "Email Opened", "Email Link Clicked", "Email Bounced", "Email Complained" — published as
  ``event.ingested`` from ``huiliu.feedback``, so identity folds them into the profile like any other
  event and segments / journey goals can use them.
- Each kind also becomes a typed contract on the bus, once per send: ``notification.delivered``,
  ``.opened``, ``.clicked``, ``.bounced``, ``.complained`` (huiliu.contracts), keyed by the send's
  idempotency key and carrying its journey, step and channel from the send log (reports count the
  funnel from them). A conditional write on the send's log entry (``fb_<kind>``) makes a second
  open, a second click or SES repeating an event add nothing.
- An unsubscribe stops marketing on the channel at once (``optout`` on notify's contact) and goes
  to identity as an identify event with ``context.consent = {channel: false}``; identity's next
  ``profile.changed`` then carries the withdrawn consent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.contracts import FEEDBACK_CONTRACTS, Channel, Purpose, derive_event_id
from huiliu.models import CanonicalEvent, EventType, Source, build_identifiers
from huiliu.notify.channels.email import untag_value
from huiliu.notify.repository import MessagesRepository
from huiliu.notify.unsubscribe import UnsubscribeClaim

SOURCE = "huiliu.feedback"
EVENT_NAMES = {
    "Delivery": "Email Delivered",
    "Open": "Email Opened",
    "Click": "Email Link Clicked",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complained",
}


def _tag(mail: dict[str, Any], name: str) -> str | None:
    values = (mail.get("tags") or {}).get(f"huiliu_{name}")
    if not values:
        return None
    try:
        return untag_value(str(values[0]))
    except ValueError:
        return None


class FeedbackService:
    def __init__(self, repo: MessagesRepository, now: Callable[[], datetime]) -> None:
        self.repo = repo
        self.now = now

    def handle_ses(self, envelope: dict[str, Any]) -> list[OutgoingEvent]:
        """One SES event from EventBridge; events it does not know, or mail not sent by Huiliu, are
        acknowledged and ignored."""
        if envelope.get("source") != "aws.ses":
            return []
        detail = envelope.get("detail") or {}
        kind = detail.get("eventType") or detail.get("notificationType")
        mail = detail.get("mail") or {}
        tenant = _tag(mail, "tenant")
        if kind not in EVENT_NAMES or not tenant:
            return []
        profile_id = _tag(mail, "profile")
        key = _tag(mail, "key")
        message_id = str(mail.get("messageId", ""))
        at = str(envelope.get("time") or self.now().isoformat())
        recipients: list[str] = list(mail.get("destination") or [])
        properties: dict[str, Any] = {"ses_message_id": message_id}
        if key:
            properties["idempotency_key"] = key
        if kind == "Bounce":
            bounce = detail.get("bounce") or {}
            recipients = [
                r.get("emailAddress", "") for r in bounce.get("bouncedRecipients", [])
            ] or recipients
            properties["bounce_type"] = bounce.get("bounceType")
            properties["bounce_subtype"] = bounce.get("bounceSubType")
            if bounce.get("bounceType") == "Permanent":
                for address in recipients:
                    self.repo.suppress(tenant, "email", address, "bounce", at)
        elif kind == "Complaint":
            complaint = detail.get("complaint") or {}
            recipients = [
                r.get("emailAddress", "") for r in complaint.get("complainedRecipients", [])
            ] or recipients
            properties["feedback_type"] = complaint.get("complaintFeedbackType")
            for address in recipients:
                self.repo.suppress(tenant, "email", address, "complaint", at)
        elif kind == "Click":
            properties["link"] = (detail.get("click") or {}).get("link")
        out = self._contract(envelope, kind, tenant, profile_id, key, at, properties)
        for n, address in enumerate(recipients):
            event = CanonicalEvent(
                tenant_id=tenant,
                message_id=f"ses-{derive_event_id(message_id, kind, address, at)}",
                type=EventType.TRACK,
                event=EVENT_NAMES[kind],
                timestamp=datetime.fromisoformat(at.replace("Z", "+00:00")),
                received_at=self.now(),
                source=Source(connector="ses"),
                identifiers=build_identifiers([("email", address)]),
                properties={**properties, "recipient_index": n},
                context={"profile_id": profile_id} if profile_id else {},
            )
            out.append(OutgoingEvent(SOURCE, "event.ingested", event.model_dump(mode="json")))
        return out

    def _contract(
        self,
        envelope: dict[str, Any],
        kind: str,
        tenant: str,
        profile_id: str | None,
        key: str | None,
        at: str,
        properties: dict[str, Any],
    ) -> list[OutgoingEvent]:
        """The send's ``notification.<kind>``, the first time this kind is seen for it."""
        if not profile_id or not key:
            return []  # not a Huiliu send we can key (a tag over SES's 256 characters was left out)
        token = str(envelope.get("id") or derive_event_id(properties["ses_message_id"], kind, at))
        record = self.repo.mark_feedback(tenant, profile_id, key, kind, token)
        if record is None:
            return []  # seen before (a second open, a repeated event) or a send we never logged
        contract = FEEDBACK_CONTRACTS[kind]
        return [
            contract(
                event_id=derive_event_id(tenant, key, contract.DETAIL_TYPE),
                tenant_id=tenant,
                occurred_at=self.now().isoformat(),
                idempotency_key=key,
                profile_id=profile_id,
                channel=Channel(record.channel),
                template_id=record.template_id,
                purpose=Purpose(record.purpose),
                journey_id=record.journey_id,
                enrollment_id=record.enrollment_id,
                step_id=record.step_id,
                provider=record.provider,
                provider_id=record.provider_id,
                provider_event_at=at,
                link=properties.get("link"),
                bounce_type=properties.get("bounce_type"),
                bounce_subtype=properties.get("bounce_subtype"),
                feedback_type=properties.get("feedback_type"),
            ).outgoing()
        ]

    def unsubscribe(self, claim: UnsubscribeClaim) -> list[OutgoingEvent]:
        """Marketing on the channel stops now; identity hears it as withdrawn consent."""
        now = self.now()
        self.repo.set_optout(claim.tenant_id, claim.profile_id, claim.channel, now.isoformat())
        kind = {"email": "email", "sms": "phone", "wechat": "wechat_openid"}.get(claim.channel, "email")
        event = CanonicalEvent(
            tenant_id=claim.tenant_id,
            message_id=f"unsub-{derive_event_id(claim.profile_id, claim.channel, now.isoformat())}",
            type=EventType.IDENTIFY,
            timestamp=now,
            received_at=now,
            source=Source(connector="unsubscribe"),
            identifiers=build_identifiers([(kind, claim.address)]),
            context={"consent": {claim.channel: False}, "profile_id": claim.profile_id},
        )
        return [OutgoingEvent(SOURCE, "event.ingested", event.model_dump(mode="json"))]
