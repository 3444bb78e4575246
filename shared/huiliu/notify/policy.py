"""The send policy, pure: suppression → consent → quiet hours → frequency cap (DESIGN §4).

No I/O and no clock of its own: every function takes ``now`` (an aware UTC datetime), so quiet
hours across midnight and rolling cap windows are tested by moving time, never by sleeping.
The benchmark holds each decision under 1 ms of CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Verdict(StrEnum):
    SEND = "send"
    SUPPRESS = "suppress"  # a rule says never (suppression list, no consent, no address)
    DEFER = "defer"  # not now: quiet hours or over the cap (tried again at ``until``)
    DROP = "drop"  # over the cap and the tenant drops rather than defers


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    until: datetime | None = None

    @property
    def sends(self) -> bool:
        return self.verdict == Verdict.SEND


SEND = Decision(Verdict.SEND)


@lru_cache(maxsize=512)
def zone(name: str | None, fallback: str = "Asia/Shanghai") -> ZoneInfo:
    """A time zone by IANA name; an unknown or empty name gives ``fallback``."""
    for candidate in (name, fallback):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


@lru_cache(maxsize=256)
def _clock_time(text: str) -> time:
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``day`` at ``at`` in ``tz`` as UTC. A wall time a DST jump skips takes the offset before the
    jump (PEP 495, fold=0), i.e. it lands just after the gap (02:30 → 03:30 on a spring-forward day)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def quiet_until(
    now: datetime, tz_name: str | None, start: str, end: str, *, tenant_tz: str
) -> datetime | None:
    """The end of the quiet window ``now`` falls in (UTC), or None when sending is fine now.

    The window is wall-clock time in the person's zone when known, else the tenant's. ``21:00`` →
    ``08:00`` crosses midnight: 23:30 defers to 08:00 the next day, 06:00 to 08:00 the same day.
    """
    tz = zone(tz_name, tenant_tz)
    begin, finish = _clock_time(start), _clock_time(end)
    if begin == finish:
        return None
    local = now.astimezone(tz)
    at = local.time()
    today = local.date()
    if begin < finish:  # same-day window, e.g. 12:00-14:00
        return _local(today, finish, tz) if begin <= at < finish else None
    if at >= begin:  # evening part of a window that crosses midnight
        return _local(today + timedelta(days=1), finish, tz)
    if at < finish:  # early-morning part
        return _local(today, finish, tz)
    return None


@dataclass(frozen=True)
class CapRule:
    """At most ``limit`` messages in ``window`` per profile and channel (marketing by default).

    ``reserved`` of those slots are kept for messages of priority ≥ ``priority_threshold``: when two
    journeys compete for the last slot, the important one wins it even if it arrives second.
    """

    limit: int
    window: timedelta
    reserved: int = 0
    priority_threshold: int = 50
    over_cap: str = "defer"  # or "drop"


@dataclass
class CapState:
    """The sends counted in a profile's window on one channel: ``(epoch seconds, idempotency key)``.

    ``version`` guards the conditional update that makes the cap atomic under concurrency.
    """

    sends: list[tuple[int, str]] = field(default_factory=list)
    version: int = 0


@dataclass(frozen=True)
class CapDecision:
    decision: Decision
    sends: list[tuple[int, str]] | None = None  # the new window to write when the message may go


def check_cap(
    rule: CapRule | None, state: CapState, now: datetime, *, key: str, priority: int
) -> CapDecision:
    """May one more message go? Returns the window to write (with this send counted) if so."""
    if rule is None:
        return CapDecision(SEND, None)
    stamp = int(now.timestamp())
    cutoff = stamp - int(rule.window.total_seconds())
    live = sorted((s for s in state.sends if s[0] > cutoff), key=lambda s: s[0])
    if any(k == key for _, k in live):  # a retry of a send already counted
        return CapDecision(SEND, live)
    slots = rule.limit if priority >= rule.priority_threshold else rule.limit - rule.reserved
    if len(live) < slots:
        return CapDecision(SEND, [*live, (stamp, key)])
    reason = f"frequency_cap:{rule.limit}/{_human(rule.window)}"
    if rule.over_cap == "drop" or slots <= 0:
        return CapDecision(Decision(Verdict.DROP, reason))
    # The earliest moment enough of the window has expired for one more slot.
    oldest_needed = live[len(live) - slots]
    until = datetime.fromtimestamp(oldest_needed[0] + int(rule.window.total_seconds()) + 1, UTC)
    return CapDecision(Decision(Verdict.DEFER, reason, until))


def _human(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class PolicyInput:
    channel: str
    purpose: str
    address: str | None
    suppressed: str | None  # reason the address is on the suppression list, if it is
    consent: bool  # marketing consent on the channel (transactional needs none)
    person_tz: str | None
    tenant_tz: str
    quiet_start: str
    quiet_end: str
    quiet_applies: bool  # marketing always; transactional only if the tenant says so


def decide(inp: PolicyInput, now: datetime) -> Decision:
    """Suppression, consent and quiet hours, in that order (the cap is checked at claim time)."""
    if not inp.address:
        return Decision(Verdict.SUPPRESS, f"no_{inp.channel}_address")
    if inp.suppressed:
        return Decision(Verdict.SUPPRESS, f"suppressed:{inp.suppressed}")
    if inp.purpose == "marketing" and not inp.consent:
        return Decision(Verdict.SUPPRESS, f"no_consent:{inp.channel}")
    if inp.quiet_applies:
        until = quiet_until(now, inp.person_tz, inp.quiet_start, inp.quiet_end, tenant_tz=inp.tenant_tz)
        if until is not None:
            return Decision(Verdict.DEFER, "quiet_hours", until)
    return SEND
