"""The step interpreter: pure functions from (definition, enrollment, profile, input, now) to a
:class:`Transition` — the new enrollment state, the actions to request, the funnel counters to add
and the decision-log lines. No AWS, no clock of its own: the caller passes ``now``.

Determinism is what makes exactly-once possible: the same enrollment revision with the same input
gives the same transition, and every action's id derives from (enrollment id, step id, visit
number), so a re-run after a crash or an overlapping tick requests the same message with the same
idempotency key — never a second, different one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huiliu.clock import parse_duration
from huiliu.journeys.definition import (
    END,
    WEEKDAYS,
    BranchStep,
    ExitStep,
    Journey,
    SendStep,
    SetTraitStep,
    SplitStep,
    TagStep,
    WaitStep,
    WebhookStep,
)
from huiliu.journeys.matching import all_match, bucket, lookup, stable_id

MAX_STEPS_PER_RUN = 500
MAX_LOG = 60
ACTIVE = "active"
COMPLETED = "completed"
EXITED = "exited"


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class ProfileView:
    """What journeys knows about a person (its own projection, fed by profile.* and segment.*)."""

    profile_id: str
    version: int = 0
    traits: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    computed: dict[str, Any] = field(default_factory=dict)
    identifiers: list[dict[str, str]] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    # event name -> when journeys last saw it (journeys' clock), for "did X since entry".
    seen: dict[str, str] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "traits": self.traits,
            "tags": self.tags,
            "computed": self.computed,
            "segments": self.segments,
            "identifiers": self.identifiers,
        }

    @property
    def timezone(self) -> str | None:
        for name in ("timezone", "time_zone", "tz"):
            value = self.traits.get(name)
            if isinstance(value, str) and value:
                return value
        return None


@dataclass(frozen=True)
class EventInfo:
    """One event a person did (from profile.changed's triggering event)."""

    event_id: str
    name: str
    properties: dict[str, Any]
    timestamp: str | None = None


@dataclass
class Enrollment:
    tenant_id: str
    profile_id: str
    journey_id: str
    journey_version: int
    key: str  # unique per (profile, journey): "once", an instance key, or the trigger's id
    enrollment_id: str
    entered_at: str
    status: str = ACTIVE
    step_id: str | None = None
    next_at: str | None = None
    wait: dict[str, Any] | None = None
    instance: str | None = None
    holdout: bool = False
    goal_until: str | None = None
    converted_at: str | None = None
    exit_reason: str | None = None
    rev: int = 0
    visits: dict[str, int] = field(default_factory=dict)
    trigger: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    ended_at: str | None = None
    # Ids of the bus events already applied (a redelivered event is not applied twice).
    applied: list[str] = field(default_factory=list)

    def copy(self) -> Enrollment:
        return copy.deepcopy(self)

    @property
    def live(self) -> bool:
        return self.status == ACTIVE

    @property
    def watching_goal(self) -> bool:
        return self.goal_until is not None and self.converted_at is None


@dataclass(frozen=True)
class Action:
    kind: str  # send | webhook | tag | set_trait
    step_id: str
    idempotency_key: str
    params: dict[str, Any]


@dataclass
class Transition:
    enrollment: Enrollment
    actions: list[Action] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def note(self, now: datetime, step: str | None, what: str, **detail: Any) -> None:
        entry = {
            "at": iso(now),
            "step": step,
            "what": what,
            **{k: v for k, v in detail.items() if v is not None},
        }
        self.log.append(entry)
        self.enrollment.log = ([*self.enrollment.log, entry])[-MAX_LOG:]


@dataclass
class Env:
    """What the interpreter needs from outside: the tenant's time zone and a condition compiler."""

    tenant_timezone: str = "Asia/Shanghai"
    compile: Callable[[dict[str, Any]], Callable[[dict[str, Any], datetime], bool]] | None = None
    _compiled: dict[str, Any] = field(default_factory=dict)

    def condition(self, key: str, condition: dict[str, Any]) -> Callable[[dict[str, Any], datetime], bool]:
        if key not in self._compiled:
            compile_fn = self.compile
            if compile_fn is None:
                from huiliu.journeys.conditions import compile_condition

                compile_fn = compile_condition
            self._compiled[key] = compile_fn(condition)
        return self._compiled[key]


# ------------------------------------------------------------------ entering
def enrollment_key(journey: Journey, trigger_event_id: str, instance: str | None) -> str:
    if instance is not None:
        return f"I#{instance}"
    if journey.entry.policy == "once":
        return "once"
    return f"X#{trigger_event_id}"


def enrollment_id_for(tenant_id: str, profile_id: str, journey_id: str, key: str) -> str:
    return stable_id(tenant_id, profile_id, journey_id, key)


def in_holdout(journey: Journey, profile_id: str) -> bool:
    return journey.holdout_percent > 0 and bucket(journey.id, "holdout", profile_id) < journey.holdout_percent


def enroll(
    journey: Journey,
    tenant_id: str,
    profile: ProfileView,
    *,
    trigger: dict[str, Any],
    key: str,
    instance: str | None,
    now: datetime,
    env: Env,
) -> Transition:
    """A new enrollment, run up to its first wait (or to its end)."""
    enr = Enrollment(
        tenant_id=tenant_id,
        profile_id=profile.profile_id,
        journey_id=journey.id,
        journey_version=journey.version,
        key=key,
        enrollment_id=enrollment_id_for(tenant_id, profile.profile_id, journey.id, key),
        entered_at=iso(now),
        step_id=journey.first_step,
        instance=instance,
        holdout=in_holdout(journey, profile.profile_id),
        trigger=trigger,
    )
    if journey.goal is not None:
        enr.goal_until = iso(now + parse_duration(journey.goal.within))
    tr = Transition(enr)
    tr.counters.append("entered_holdout" if enr.holdout else "entered")
    tr.note(now, None, "entered", trigger=trigger.get("kind"), instance=instance, holdout=enr.holdout or None)
    if enr.holdout:
        # The holdout takes no step: it only waits out the goal window so its conversions count.
        enr.step_id = None
        if enr.goal_until:
            enr.next_at = enr.goal_until
            enr.wait = {"kind": "holdout"}
        else:
            _finish(tr, now, COMPLETED, "holdout")
        return tr
    _run(journey, tr, profile, now, env)
    return tr


# ------------------------------------------------------------------ resuming
def on_due(
    journey: Journey, enr: Enrollment, profile: ProfileView, now: datetime, env: Env
) -> Transition | None:
    """A time-based wait (or an event wait's timeout, or a holdout's goal window) has come."""
    if not enr.live or enr.next_at is None or parse_time(enr.next_at) > now:  # type: ignore[operator]
        return None
    tr = Transition(enr.copy())
    e = tr.enrollment
    wait = e.wait or {}
    if wait.get("kind") == "holdout":
        e.next_at, e.wait = None, None
        _finish(tr, now, COMPLETED, "holdout")
        return tr
    e.next_at, e.wait = None, None
    if wait.get("kind") == "event":
        tr.note(now, e.step_id, "wait timed out", next=wait.get("on_timeout"))
        e.step_id = wait.get("on_timeout")
    else:
        tr.note(now, e.step_id, "wait over", next=wait.get("next"))
        e.step_id = wait.get("next")
    _run(journey, tr, profile, now, env)
    return tr


def on_event(
    journey: Journey, enr: Enrollment, profile: ProfileView, event: EventInfo, now: datetime, env: Env
) -> Transition | None:
    """An event of this person: goal, exit conditions (immediately, cancelling a wait), wait-for-event."""
    if not enr.live and not enr.watching_goal:
        return None
    tr = Transition(enr.copy())
    e = tr.enrollment
    changed = False
    goal = journey.goal
    if (
        goal is not None
        and e.watching_goal
        and event.name == goal.event
        and all_match(goal.where, event.properties)
        and now <= parse_time(e.goal_until)  # type: ignore[operator]
    ):
        e.converted_at = iso(now)
        tr.counters.append("converted_holdout" if e.holdout else "converted")
        tr.note(now, e.step_id, "converted", event=event.name)
        changed = True
    if not e.live:
        return tr if changed else None
    for i, cond in enumerate(journey.exit):
        if cond.event is None or cond.event != event.name or not all_match(cond.where, event.properties):
            continue
        if cond.same_instance and e.instance is not None and _instance_of(journey, event) != e.instance:
            continue
        tr.note(now, e.step_id, "exit condition met", condition=f"exit[{i}]", event=event.name)
        _finish(tr, now, EXITED, f"event:{event.name}")
        return tr
    if changed and goal is not None and goal.exit and not e.holdout:
        _finish(tr, now, EXITED, "goal")
        return tr
    wait = e.wait or {}
    if wait.get("kind") == "event" and wait.get("event") == event.name:
        step = journey.step(e.step_id) if e.step_id else None
        if (
            isinstance(step, WaitStep)
            and step.event is not None
            and all_match(step.event.where, event.properties)
        ) and not (
            step.same_instance and e.instance is not None and _instance_of(journey, event) != e.instance
        ):
            tr.note(now, e.step_id, "awaited event arrived", event=event.name, next=wait.get("next"))
            e.next_at, e.wait = None, None
            e.step_id = wait.get("next")
            _run(journey, tr, profile, now, env)
            return tr
    return tr if changed else None


def on_segment(
    journey: Journey, enr: Enrollment, segment_id: str, entered: bool, now: datetime
) -> Transition | None:
    """Leaving (or entering) a segment named in an exit condition ends the enrollment at once."""
    if not enr.live:
        return None
    for i, cond in enumerate(journey.exit):
        hit = cond.segment_entered == segment_id if entered else cond.segment_exited == segment_id
        if hit:
            tr = Transition(enr.copy())
            verb = "entered" if entered else "left"
            tr.note(now, enr.step_id, f"{verb} segment", condition=f"exit[{i}]", segment=segment_id)
            _finish(tr, now, EXITED, f"segment_{'entered' if entered else 'exited'}:{segment_id}")
            return tr
    return None


def cancel(enr: Enrollment, reason: str, now: datetime) -> Transition | None:
    """End an enrollment from outside (archived journey, merged or erased profile)."""
    if not enr.live:
        return None
    tr = Transition(enr.copy())
    tr.note(now, enr.step_id, "cancelled", reason=reason)
    _finish(tr, now, EXITED, reason)
    return tr


def _instance_of(journey: Journey, event: EventInfo) -> str | None:
    if journey.instance is None:
        return None
    value = lookup(event.properties, journey.instance.key)
    return None if value is None or isinstance(value, dict | list) else str(value)


def _finish(tr: Transition, now: datetime, status: str, reason: str) -> None:
    e = tr.enrollment
    e.status = status
    e.exit_reason = reason
    e.next_at, e.wait = None, None
    e.ended_at = iso(now)
    tr.counters.append(f"{status}:{reason}" if status == EXITED else "completed")
    tr.note(now, e.step_id, status, reason=reason)
    e.step_id = None


# ------------------------------------------------------------------ running steps
def _run(journey: Journey, tr: Transition, profile: ProfileView, now: datetime, env: Env) -> None:
    e = tr.enrollment
    for _ in range(MAX_STEPS_PER_RUN):
        if e.step_id in (None, END):
            _finish(tr, now, COMPLETED, "end")
            return
        step = journey.step(e.step_id)
        visit = e.visits.get(step.id, 0) + 1
        e.visits[step.id] = visit
        tr.counters.append(f"reached:{step.id}")
        default = step.next or journey.following(step.id)
        if isinstance(step, WaitStep):
            _enter_wait(journey, tr, step, default, profile, now, env)
            return
        if isinstance(step, BranchStep):
            taken, why = _branch(step, e, profile, now, env)
            target = (step.then or default) if taken else step.else_
            tr.note(now, step.id, "branch", result="yes" if taken else "no", why=why, next=target)
            e.step_id = target
        elif isinstance(step, SplitStep):
            point = bucket(journey.id, step.id, e.profile_id)
            edge = 0.0
            chosen = step.paths[-1]
            for path in step.paths:
                edge += path.percent
                if point < edge:
                    chosen = path
                    break
            tr.note(now, step.id, "split", path=chosen.name or chosen.next, next=chosen.next)
            e.step_id = chosen.next
        elif isinstance(step, ExitStep):
            _finish(tr, now, COMPLETED, f"exit_step:{step.id}")
            return
        else:
            tr.actions.append(_action(journey, e, step, visit, profile))
            if isinstance(step, SendStep | WebhookStep):
                tr.counters.append("messages")
            tr.note(now, step.id, f"action {step.type}", key=tr.actions[-1].idempotency_key)
            e.step_id = default
    raise RuntimeError(f"journey {journey.id}: more than {MAX_STEPS_PER_RUN} steps without a wait")


def _enter_wait(
    journey: Journey,
    tr: Transition,
    step: WaitStep,
    default: str,
    profile: ProfileView,
    now: datetime,
    env: Env,
) -> None:
    e = tr.enrollment
    if step.duration:
        until = now + parse_duration(step.duration)
        e.wait = {"kind": "time", "next": default}
        why = f"for {step.duration}"
    elif step.until is not None:
        zone_name = profile.timezone or env.tenant_timezone
        until = next_local_time(now, step.until.weekday, step.until.time, zone_name, env.tenant_timezone)
        e.wait = {"kind": "time", "next": default}
        why = f"until {step.until.weekday} {step.until.time} {zone_name}"
    else:
        assert step.event is not None
        assert step.timeout is not None
        until = now + parse_duration(step.timeout)
        e.wait = {
            "kind": "event",
            "event": step.event.event,
            "next": default,
            "on_timeout": step.on_timeout or default,
        }
        why = f"for {step.event.event} (timeout {step.timeout})"
    e.next_at = iso(until)
    tr.note(now, step.id, "waiting", why=why, until=e.next_at)


def next_local_time(now: datetime, weekday: str, hhmm: str, zone: str, fallback_zone: str) -> datetime:
    """The first moment after ``now`` that is ``weekday`` (or any day) at ``hh:mm`` in ``zone``."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo(fallback_zone)
    local = now.astimezone(tz)
    hour, minute = (int(x) for x in hhmm.split(":"))
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if candidate <= local:
            continue
        if weekday == "any" or WEEKDAYS[candidate.weekday()] == weekday:
            return candidate.astimezone(UTC)
    raise AssertionError("a weekday comes within 8 days")  # pragma: no cover


def _branch(
    step: BranchStep, e: Enrollment, profile: ProfileView, now: datetime, env: Env
) -> tuple[bool, str]:
    reasons = []
    result = True
    if step.did_event:
        seen = profile.seen.get(step.did_event)
        did = seen is not None and seen > e.entered_at
        reasons.append(f"{step.did_event} since entry: {'yes, ' + seen if did and seen else 'no'}")
        result = result and did
    if step.condition is not None:
        predicate = env.condition(f"{e.journey_id}:{e.journey_version}:{step.id}", step.condition)
        ok = bool(predicate(profile.snapshot(), now))
        reasons.append(f"condition: {'met' if ok else 'not met'}")
        result = result and ok
    return result, "; ".join(reasons)


def _action(journey: Journey, e: Enrollment, step: Any, visit: int, profile: ProfileView) -> Action:
    key = stable_id(e.tenant_id, e.enrollment_id, step.id, str(visit), length=32)
    base_vars = {
        "journey_id": journey.id,
        "instance": e.instance,
        **{k: v for k, v in (e.trigger.get("properties") or {}).items() if isinstance(k, str)},
    }
    if isinstance(step, SendStep):
        params = {
            "channel": step.channel,
            "fallback": list(step.fallback),
            "template_id": step.template,
            "purpose": step.purpose,
            "priority": step.priority,
            "variables": {**base_vars, **step.variables},
        }
        return Action("send", step.id, key, params)
    if isinstance(step, WebhookStep):
        params = {
            "channel": "webhook",
            "fallback": [],
            "template_id": step.template,
            "purpose": "transactional",
            "priority": 5,
            "variables": {**base_vars, **step.variables},
        }
        return Action("webhook", step.id, key, params)
    if isinstance(step, TagStep):
        return Action("tag", step.id, key, {"add": list(step.add), "remove": list(step.remove)})
    assert isinstance(step, SetTraitStep)
    return Action("set_trait", step.id, key, {"traits": dict(step.traits)})
