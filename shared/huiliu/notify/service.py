"""The notify stage: ``notification.requested`` → a sent message or a recorded reason why not;
``profile.changed/merged/erased`` → the contact projection (and erasure).

One request, in order (docs/notify.md):

1. ``load`` — contact, send log entry and cap window in one BatchGetItem. A finished key replays
   its outcome (same event id) and sends nothing; a key another worker holds is retried later.
2. policy — suppression, consent (marketing only), quiet hours → suppressed / deferred.
3. render — the tenant's template in the person's locale (StrictUndefined: a missing variable is a
   failure, but templates are checked against a sample when saved so it should never happen).
4. cap + claim — the cap window and the claim in one transaction, with a ConditionCheck that the
   address is not on the suppression list. A lost race on the cap re-reads the window and decides
   again, so two concurrent sends at the cap leave exactly the cap.
5. send — through the channel's provider; then ``finish`` records the outcome.

A crash between 5's provider call and its log write leaves a claim whose lease runs out: the next
delivery resends only through a provider that dedupes on our key (webhook-id, WeChat
client_msg_id); otherwise it records ``failed: unknown_outcome`` — at most once, never twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jinja2 import TemplateError
from pydantic import BaseModel

from huiliu.contracts import (
    Channel,
    NotificationDeferred,
    NotificationFailed,
    NotificationOutcome,
    NotificationRequested,
    NotificationSent,
    NotificationSuppressed,
    ProfileChanged,
    ProfileErased,
    ProfileMerged,
    derive_event_id,
)
from huiliu.notify.channels.base import OutboundMessage, ProviderError, Sender
from huiliu.notify.models import Contact, SendRecord, State
from huiliu.notify.policy import PolicyInput, Verdict, check_cap, decide, zone
from huiliu.notify.repository import ClaimResult, MessagesRepository
from huiliu.notify.settings import NotifySettings, cap_rule
from huiliu.notify.templates import InvalidTemplate, Template, render
from huiliu.notify.unsubscribe import UnsubscribeClaim, unsubscribe_url

SOURCE = "huiliu.notify"


class InFlight(Exception):
    """Another delivery of this key holds the claim right now: try this one again later."""


class Requeue(Protocol):
    """Brings a request back at ``at`` (SQS DelaySeconds up to 15 minutes, else a due item)."""

    def later(self, request: NotificationRequested, at: datetime, now: datetime) -> None: ...


class TenantLookup(Protocol):
    def settings(self, tenant_id: str) -> Any: ...


class TemplateLookup(Protocol):
    def get(self, tenant: str, template_id: str) -> Template | None: ...


@dataclass
class NotifyConfig:
    lease_seconds: int = 120  # < the channel queues' visibility timeout
    max_attempts: int = 6
    backoff_seconds: int = 30  # 30 s, 60 s, 2 min … (capped at 15 min)
    max_backoff_seconds: int = 900
    public_api_url: str | None = None
    unsubscribe_key: bytes = b""
    quota_reset_tz: str = "Asia/Shanghai"
    unknown_profile_retries: int = 3  # WeChat / Aliyun day quotas reset at local midnight


@dataclass
class NotifyService:
    repo: MessagesRepository
    tenants: TenantLookup
    templates: TemplateLookup
    senders: dict[str, Sender]
    requeue: Requeue
    now: Callable[[], datetime]
    config: NotifyConfig = field(default_factory=NotifyConfig)

    accepts: tuple[type[BaseModel], ...] = (
        NotificationRequested,
        ProfileChanged,
        ProfileMerged,
        ProfileErased,
    )

    # ------------------------------------------------------------------ dispatch
    def handle(self, event: BaseModel) -> Sequence[Any]:
        if isinstance(event, NotificationRequested):
            return self.send(event)
        if isinstance(event, ProfileChanged):
            self.repo.upsert_contact(event.tenant_id, Contact.from_snapshot(event.profile))
            return []
        if isinstance(event, ProfileMerged):
            self.repo.mark_merged(event.tenant_id, event.absorbed_id, event.profile_id)
            return []
        if isinstance(event, ProfileErased):
            for profile_id in dict.fromkeys([event.profile_id, *event.profile_ids]):
                self.repo.erase(event.tenant_id, profile_id)
            return []
        return []

    # ------------------------------------------------------------------ one request
    def send(self, req: NotificationRequested) -> list[Any]:
        now = self.now()
        tenant = self.tenants.settings(req.tenant_id)
        ns: NotifySettings = tenant.notify
        loaded = self.repo.load(req.tenant_id, req.profile_id, req.channel, req.idempotency_key)
        held = loaded.record
        stamp = int(now.timestamp())
        stale_claim = False
        if held is not None:
            if held.terminal:
                return [self._event(req, held)]  # a redelivery: the same outcome, the same event id
            if held.state == State.CLAIMED and held.lease_until > stamp:
                raise InFlight(f"{req.idempotency_key} is being sent by another delivery")
            if held.state in (State.RETRY, State.DEFERRED) and held.lease_until > stamp:
                return []  # an early copy: the scheduled one comes back at lease_until
            stale_claim = held.state == State.CLAIMED
        contact = loaded.contact
        if contact is not None and contact.merged_into:
            contact = self.repo.contact(req.tenant_id, contact.merged_into) or contact
        base = SendRecord(
            idempotency_key=req.idempotency_key,
            profile_id=req.profile_id,
            channel=req.channel.value,
            state=State.CLAIMED,
            attempts=held.attempts if held else 0,
            purpose=req.purpose.value,
            template_id=req.template_id,
            journey_id=req.journey_id,
            enrollment_id=req.enrollment_id,
            step_id=req.step_id,
            created_at=held.created_at if held and held.created_at else now.isoformat(),
        )

        try:
            template = self.templates.get(req.tenant_id, req.template_id)
        except InvalidTemplate:
            return self._final(req, base, State.FAILED, "template_invalid", now)
        if template is None or template.channel != req.channel:
            # A fallback channel uses the template's own version for it: "coupon-sms.email".
            try:
                variant = self.templates.get(req.tenant_id, f"{req.template_id}.{req.channel.value}")
            except InvalidTemplate:
                variant = None
            template = variant or template
        if template is None:
            return self._final(req, base, State.FAILED, "template_not_found", now)
        if template.channel != req.channel:
            return self._final(req, base, State.FAILED, "template_channel_mismatch", now)
        if not template.allows(req.purpose):
            return self._final(req, base, State.FAILED, "template_transactional_only", now)
        # A marketing template is marketing whatever the request says (no consent bypass).
        purpose = (
            "marketing" if "marketing" in (req.purpose.value, template.purpose.value) else "transactional"
        )
        base.purpose = purpose

        if contact is None and req.channel != Channel.WEBHOOK:
            # The projection may not have seen this person's profile.changed yet (journeys and
            # notify hear it at the same time): wait a little before calling the person unknown.
            if base.attempts < self.config.unknown_profile_retries:
                return self._wait_for_contact(req, base, now)
            return self._final(req, base, State.SUPPRESSED, "unknown_profile", now)
        address = self._address(req.channel, contact, template, ns)
        base.to = address
        decision = decide(
            PolicyInput(
                channel=req.channel.value,
                purpose=purpose,
                address=address,
                suppressed=None,  # the suppression list is checked atomically with the claim
                consent=bool(contact and contact.consents(req.channel.value)),
                person_tz=contact.timezone if contact else None,
                tenant_tz=tenant.timezone,
                quiet_start=tenant.quiet_hours.start,
                quiet_end=tenant.quiet_hours.end,
                quiet_applies=purpose == "marketing" or ns.quiet_hours_transactional,
            ),
            now,
        )
        if decision.verdict == Verdict.SUPPRESS:
            return self._final(req, base, State.SUPPRESSED, decision.reason, now) + self._fallback(req)
        if decision.verdict == Verdict.DEFER:
            assert decision.until is not None
            return self._defer(req, base, decision.until, decision.reason, now)

        try:
            message = self._message(req, template, contact, address, ns, tenant.default_locale, purpose)
        except TemplateError as exc:
            return self._final(req, base, State.FAILED, f"render_error: {exc}"[:300], now)
        sender = self._sender(req.channel, ns)
        if stale_claim and not sender.idempotent(message):
            assert held is not None
            return self._finish(req, held, State.FAILED, now, reason="unknown_outcome")

        rule = cap_rule(tenant, req.channel.value, purpose)
        cap_state = loaded.cap
        claimed: SendRecord | None = None
        for _ in range(8):
            verdict = check_cap(rule, cap_state, now, key=req.idempotency_key, priority=req.priority)
            if not verdict.decision.sends:
                if verdict.decision.verdict == Verdict.DROP:
                    return self._final(req, base, State.DROPPED, verdict.decision.reason, now)
                assert verdict.decision.until is not None
                return self._defer(req, base, verdict.decision.until, verdict.decision.reason, now)
            attempt = base.model_copy(update={"attempts": base.attempts + 1, "provider": sender.provider})
            cap = None
            if rule is not None and verdict.sends is not None:
                cap = (cap_state, verdict.sends, int(rule.window.total_seconds()))
            result = self.repo.claim(
                req.tenant_id,
                attempt,
                now,
                lease_seconds=self.config.lease_seconds,
                cap=cap,
                address=address if req.channel != Channel.WEBHOOK else None,
            )
            if result == ClaimResult.CLAIMED:
                claimed = attempt.model_copy(
                    update={"state": State.CLAIMED, "lease_until": stamp + self.config.lease_seconds}
                )
                break
            if result == ClaimResult.SUPPRESSED:
                return self._final(req, base, State.SUPPRESSED, "suppressed", now) + self._fallback(req)
            if result == ClaimResult.DUPLICATE:
                return []  # another delivery took the key and will record its outcome
            cap_state = self.repo.cap(req.tenant_id, req.profile_id, req.channel.value)
        if claimed is None:
            raise InFlight("the cap window kept changing; try again")

        try:
            sent = sender.send(message)
        except ProviderError as exc:
            return self._provider_error(req, claimed, exc, sender.idempotent(message), now)
        return self._finish(
            req, claimed, State.SENT, now, provider=sent.provider, provider_id=sent.provider_id, reason=None
        )

    # ------------------------------------------------------------------ pieces
    def _address(
        self, channel: Channel, contact: Contact | None, template: Template, ns: NotifySettings
    ) -> str | None:
        if channel == Channel.WEBHOOK:
            return template.webhook_url or ns.webhook_url
        return contact.address(channel.value) if contact else None

    def _sender(self, channel: Channel, ns: NotifySettings) -> Sender:
        if channel == Channel.SMS:
            return self.senders[f"sms:{ns.sms_provider}"]
        return self.senders[channel.value]

    def _message(
        self,
        req: NotificationRequested,
        template: Template,
        contact: Contact | None,
        address: str | None,
        ns: NotifySettings,
        default_locale: str,
        purpose: str,
    ) -> OutboundMessage:
        unsubscribe = None
        if req.channel == Channel.EMAIL and self.config.public_api_url and address:
            unsubscribe = unsubscribe_url(
                self.config.public_api_url,
                self.config.unsubscribe_key,
                UnsubscribeClaim(req.tenant_id, req.profile_id, "email", address),
            )
        context = {
            **req.variables,  # journey variables also by their own name: {{ coupon }}
            "traits": contact.traits if contact else {},
            "profile": {
                "id": req.profile_id,
                "email": contact.email if contact else None,
                "phone": contact.phone if contact else None,
                "locale": contact.locale if contact else None,
                "timezone": contact.timezone if contact else None,
            },
            "event": req.variables.get("event", {}) if isinstance(req.variables.get("event"), dict) else {},
            "vars": req.variables,
            "unsubscribe_url": unsubscribe or "",
        }
        locale = template.pick_locale(req.locale, contact.locale if contact else None, default_locale)
        out = render(template, context, locale)
        extra: dict[str, Any] = {}
        if template.wechat and template.wechat.miniprogram_appid:
            extra["miniprogram"] = {
                "appid": template.wechat.miniprogram_appid,
                "pagepath": template.wechat.miniprogram_page or "",
            }
        return OutboundMessage(
            tenant_id=req.tenant_id,
            idempotency_key=req.idempotency_key,
            profile_id=req.profile_id,
            channel=req.channel.value,
            purpose=purpose,
            to=address or "",
            subject=out.subject,
            text=out.text,
            html=out.html,
            url=out.url,
            fields=out.fields,
            template_code=(template.wechat.template_id if template.wechat else None)
            or (template.sms.template_code if template.sms else None),
            sign_name=(template.sms.sign_name if template.sms else None) or ns.sms_sign_name,
            kind=template.wechat.kind if template.wechat else None,
            unsubscribe_url=unsubscribe if purpose == "marketing" else None,
            tags={"tenant": req.tenant_id, "profile": req.profile_id, "key": req.idempotency_key},
            extra=extra,
        )

    def _provider_error(
        self,
        req: NotificationRequested,
        claimed: SendRecord,
        exc: ProviderError,
        idempotent: bool,
        now: datetime,
    ) -> list[BaseModel]:
        reason = exc.code
        if exc.kind == "permanent":
            return self._finish(req, claimed, State.FAILED, now, reason=reason) + self._fallback(req)
        if exc.kind == "ambiguous" and not idempotent:
            return self._finish(req, claimed, State.FAILED, now, reason=f"unknown_outcome:{reason}")
        if claimed.attempts >= self.config.max_attempts:
            return self._finish(req, claimed, State.FAILED, now, reason=f"gave_up:{reason}")
        if exc.kind == "quota":  # day quotas reset at midnight where the provider lives
            tz = zone(self.config.quota_reset_tz)
            local = now.astimezone(tz)
            until = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz).astimezone(
                UTC
            )
            self.requeue.later(self._again(req, until), until, now)
            return self._finish(
                req,
                claimed,
                State.DEFERRED,
                now,
                reason=f"quota:{reason}",
                until=until.isoformat(),
                lease_until=int(until.timestamp()),
            )
        delay = exc.retry_after or self.config.backoff_seconds * 2 ** (claimed.attempts - 1)
        delay = min(float(self.config.max_backoff_seconds), max(1.0, float(delay)))
        at = now + timedelta(seconds=delay)
        self.requeue.later(self._again(req, at), at, now)
        self.repo.finish(
            req.tenant_id, claimed, now, state=State.RETRY, reason=reason, lease_until=int(at.timestamp())
        )
        return []

    def _wait_for_contact(self, req: NotificationRequested, base: SendRecord, now: datetime) -> list[Any]:
        at = now + timedelta(seconds=self.config.backoff_seconds * 2**base.attempts)
        self.requeue.later(self._again(req, at), at, now)
        record = base.model_copy(
            update={
                "state": State.RETRY,
                "attempts": base.attempts + 1,
                "reason": "waiting_for_contact",
                "lease_until": int(at.timestamp()),
            }
        )
        self.repo.put_outcome(req.tenant_id, record, now)
        return []

    def _again(self, req: NotificationRequested, at: datetime) -> NotificationRequested:
        """The same request, due again at ``at`` (a new event id: it is a new delivery)."""
        return req.model_copy(update={"event_id": derive_event_id(req.event_id, "again", at.isoformat())})

    def _defer(
        self, req: NotificationRequested, base: SendRecord, until: datetime, reason: str, now: datetime
    ) -> list[BaseModel]:
        # Schedule first, then record: a crash in between leaves a duplicate copy (harmless, the
        # claim dedupes), never a deferral nobody will pick up.
        self.requeue.later(self._again(req, until), until, now)
        record = base.model_copy(
            update={
                "state": State.DEFERRED,
                "reason": reason,
                "until": until.isoformat(),
                "lease_until": int(until.timestamp()),
            }
        )
        if not self.repo.put_outcome(req.tenant_id, record, now):
            return []
        return [self._event(req, record)]

    def _final(
        self, req: NotificationRequested, base: SendRecord, state: State, reason: str, now: datetime
    ) -> list[BaseModel]:
        record = base.model_copy(update={"state": state, "reason": reason, "lease_until": 0})
        if not self.repo.put_outcome(req.tenant_id, record, now):
            return []
        return [self._event(req, record)]

    def _finish(
        self, req: NotificationRequested, claimed: SendRecord, state: State, now: datetime, **fields: Any
    ) -> list[BaseModel]:
        done = self.repo.finish(req.tenant_id, claimed, now, state=state, **fields)
        return [self._event(req, done)] if done.state in (State.SENT, State.FAILED, State.DEFERRED) else []

    def _fallback(self, req: NotificationRequested) -> list[Any]:
        """The next channel of ``fallback``, as a new request with its own idempotency key."""
        if not req.fallback:
            return []
        channel, rest = req.fallback[0], req.fallback[1:]
        key = f"{req.idempotency_key}~{channel.value}"
        again = req.model_copy(
            update={
                "event_id": derive_event_id(req.event_id, "fallback", channel.value),
                "idempotency_key": key[:200],
                "channel": channel,
                "fallback": rest,
            }
        )
        return [again.outgoing(SOURCE)]

    def _event(self, req: NotificationRequested, record: SendRecord) -> NotificationOutcome:
        kinds: dict[State, type[NotificationOutcome]] = {
            State.SENT: NotificationSent,
            State.FAILED: NotificationFailed,
            State.SUPPRESSED: NotificationSuppressed,
            State.DROPPED: NotificationSuppressed,
            State.DEFERRED: NotificationDeferred,
        }
        kind = kinds[record.state]
        return kind(
            event_id=derive_event_id(
                req.tenant_id, req.idempotency_key, record.state.value, record.until or ""
            ),
            tenant_id=req.tenant_id,
            correlation_id=req.correlation_id,
            occurred_at=record.updated_at or self.now().isoformat(),
            idempotency_key=req.idempotency_key,
            profile_id=req.profile_id,
            channel=req.channel,
            template_id=req.template_id,
            purpose=record.purpose,
            journey_id=req.journey_id,
            enrollment_id=req.enrollment_id,
            step_id=req.step_id,
            reason=(f"dropped:{record.reason}" if record.state == State.DROPPED else record.reason),
            provider=record.provider,
            provider_id=record.provider_id,
            until=record.until,
        )
