"""The journeys engine: bus events in (enrol, exit, resume), the minute tick (waits that are due).

Exactly once, how:

1. every transition is computed by the pure interpreter from a consistent read of the enrollment
   and committed with a conditional write on its revision (``rev``): an UPDATE statement
   ``… WHERE pk AND sk AND rev = expected``, 25 to a BatchExecuteStatement, each statement on its
   own (a new enrollment: a put with ``attribute_not_exists``) — a lost race commits nothing;
2. a transition's actions are published *before* its commit, each with an id derived from
   (enrollment, step, visit): a crash after publishing, an SQS redelivery or an overlapping tick
   re-runs the same transition from the same revision and republishes the same ids (notify sends
   once per ``idempotency_key``; identity dedupes internal events on ``message_id``), and nothing
   is lost, because nothing commits before its actions are on the bus;
3. an event already applied to an enrollment (its id is kept in ``applied``) is not applied again.

Funnel counters are added after the commits, only for transitions that committed (never twice;
a crash between commit and counter flush undercounts that invocation's transitions).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.bus import OutgoingEvent, Publisher
from huiliu.clock import Clock, default_clock, parse_duration
from huiliu.errors import ConditionFailed
from huiliu.journeys.definition import Journey
from huiliu.journeys.interest import Interest, head_interest, union
from huiliu.journeys.interpreter import (
    Action,
    Enrollment,
    Env,
    EventInfo,
    ProfileView,
    Transition,
    cancel,
    enroll,
    enrollment_key,
    iso,
    on_due,
    on_event,
    on_segment,
)
from huiliu.journeys.matching import all_match, lookup, stable_id
from huiliu.journeys.migration import MigrationPlan, migrate
from huiliu.journeys.repository import (
    STATEMENTS_PER_BATCH,
    JourneysRepository,
    enrollment_from_item,
    paused_shard,
    profile_from_item,
    profile_pk,
)
from huiliu.observability import logger

SOURCE = "huiliu.journeys"
INTERNAL_CONNECTOR = "journeys"
MAX_APPLIED = 10
# An entry claim whose enrollment never got written (its event went to the DLQ) stops counting.
CLAIM_TTL = timedelta(hours=1)
ACTIVE, PAUSED, ARCHIVED = "active", "paused", "archived"
# How long a container keeps a tenant's journey heads: a publish, pause or archive takes effect
# within this (one consistent Query per tenant per container per TTL, not one per event).
DEFINITIONS_TTL_SECONDS = 10.0


# ------------------------------------------------------------------ definitions, cached
class Definitions:
    """Journey heads per tenant (cached briefly: a newly published version, pause or archive takes
    effect within ``cache_seconds``) and immutable versions (cached for good); with the heads, the
    tenant's :class:`Interest` — what its journeys can react to."""

    def __init__(
        self,
        repo: JourneysRepository,
        cache_seconds: float = DEFINITIONS_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._heads: dict[str, tuple[float, list[dict[str, Any]], Interest]] = {}
        self._versions: dict[tuple[str, str, int], Journey | None] = {}
        self._plans: dict[tuple[str, str, int], MigrationPlan | None] = {}

    def _load(self, tenant: str) -> tuple[list[dict[str, Any]], Interest]:
        hit = self._heads.get(tenant)
        now = self.monotonic()
        if hit and now < hit[0]:
            return hit[1], hit[2]
        heads = self.repo.heads(tenant)
        interests = []
        for head in heads:
            journey = _journey_of(head.get("definition"), int(head.get("active_version", 0)))
            if journey is not None:
                self._versions[(tenant, journey.id, journey.version)] = journey
                self._plans[(tenant, journey.id, journey.version)] = MigrationPlan.from_json(
                    head.get("migrate_from")
                )
            interests.append(head_interest(head, journey))
        interest = union(interests)
        self._heads[tenant] = (now + self.cache_seconds, heads, interest)
        return heads, interest

    def heads(self, tenant: str) -> list[dict[str, Any]]:
        return self._load(tenant)[0]

    def interest(self, tenant: str) -> Interest:
        return self._load(tenant)[1]

    def status(self, tenant: str, journey_id: str) -> str:
        for head in self.heads(tenant):
            if head.get("journey_id") == journey_id:
                return str(head.get("status", ACTIVE))
        return ARCHIVED

    def active(self, tenant: str) -> list[Journey]:
        out = []
        for head in self.heads(tenant):
            if head.get("status") != ACTIVE:
                continue
            journey = self.version(tenant, str(head["journey_id"]), int(head["active_version"]))
            if journey is not None:
                out.append(journey)
        return out

    def version(self, tenant: str, journey_id: str, version: int) -> Journey | None:
        key = (tenant, journey_id, version)
        if key not in self._versions:
            item = self.repo.version(tenant, journey_id, version)
            self._versions[key] = _journey_of(item.get("definition") if item else None, version)
            self._plans[key] = MigrationPlan.from_json(item.get("migrate_from") if item else None)
        return self._versions[key]

    def plan(self, tenant: str, journey_id: str, version: int) -> MigrationPlan | None:
        """How enrollments of the version before ``version`` move onto it (None: they stay)."""
        self.version(tenant, journey_id, version)
        return self._plans.get((tenant, journey_id, version))

    def active_version(self, tenant: str, journey_id: str) -> int | None:
        for head in self.heads(tenant):
            if head.get("journey_id") == journey_id:
                return int(head.get("active_version", 0))
        return None

    def current(self, tenant: str, e: Enrollment, now: datetime) -> tuple[Enrollment, Journey | None]:
        """The enrollment and the version it runs on — moved onto newer versions first when the
        author published them with a migration plan (lazily: committed with its next transition)."""
        journey = self.version(tenant, e.journey_id, e.journey_version)
        active = self.active_version(tenant, e.journey_id)
        while active is not None and e.journey_version < active and (e.live or e.watching_goal):
            target_version = e.journey_version + 1
            target = self.version(tenant, e.journey_id, target_version)
            plan = self.plan(tenant, e.journey_id, target_version)
            if target is None or plan is None or plan.from_version != e.journey_version:
                break
            if e.live and e.step_id is not None and e.step_id not in plan.steps and e.wait:
                break  # not a resting step the plan knows (cannot happen for a checked plan)
            e = migrate(e, target, plan, now)
            journey = target
        return e, journey

    def forget(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._heads.clear()
        else:
            self._heads.pop(tenant, None)


def _journey_of(document: Any, version: int) -> Journey | None:
    if not isinstance(document, dict):
        return None
    return Journey.model_validate({**document, "version": version})


# ------------------------------------------------------------------ out events
def action_event(
    action: Action, e: Enrollment, profile: ProfileView, now: datetime, correlation: str | None
) -> OutgoingEvent:
    """The bus event an action becomes: notification.requested, or a canonical event for identity."""
    if action.kind in ("send", "webhook"):
        from huiliu.contracts import NotificationRequested

        locale = profile.traits.get("locale")
        return NotificationRequested(
            event_id=action.idempotency_key,
            tenant_id=e.tenant_id,
            correlation_id=correlation,
            occurred_at=iso(now),
            idempotency_key=action.idempotency_key,
            profile_id=e.profile_id,
            locale=locale if isinstance(locale, str) else None,
            journey_id=e.journey_id,
            journey_version=e.journey_version,
            enrollment_id=e.enrollment_id,
            step_id=action.step_id,
            **action.params,
        ).outgoing(SOURCE)
    # tag / set_trait: back in through identity, the one writer of profiles (DESIGN §8)
    from huiliu.models import CanonicalEvent

    traits: dict[str, Any] = {}
    if action.kind == "tag":
        if action.params["add"]:
            traits["tags"] = list(action.params["add"])
        if action.params["remove"]:
            traits["tags_remove"] = list(action.params["remove"])
    else:
        traits = dict(action.params["traits"])
    event = CanonicalEvent.model_validate(
        {
            "tenant_id": e.tenant_id,
            "message_id": f"journeys-{action.idempotency_key}",
            "type": "identify",
            "timestamp": now,
            "received_at": now,
            "source": {"connector": INTERNAL_CONNECTOR, "account": e.journey_id},
            "identifiers": _routing_identifiers(profile),
            "traits": traits,
            "context": {
                "journey": {
                    "journey_id": e.journey_id,
                    "enrollment_id": e.enrollment_id,
                    "step_id": action.step_id,
                }
            },
            "correlation_id": correlation,
        }
    )
    return OutgoingEvent(SOURCE, "event.ingested", event.model_dump(mode="json"))


ROUTING_PRIORITY = (
    "user_id",
    "member_id",
    "email",
    "phone",
    "wechat_unionid",
    "wechat_openid",
    "anonymous_id",
)


def _routing_identifiers(profile: ProfileView) -> list[dict[str, str]]:
    """The person's strongest identifier: identity resolves it back to the same profile."""
    for kind in ROUTING_PRIORITY:
        for ident in profile.identifiers:
            if ident.get("type") == kind:
                return [{"type": kind, "value": ident["value"]}]
    return [dict(i) for i in profile.identifiers[:1]]


# ------------------------------------------------------------------ the unit of work
@dataclass
class Pending:
    """A transition waiting to be committed: ``expected`` is the revision it was computed from."""

    transition: Transition
    expected: int | None
    profile: ProfileView
    parked: str | None = None


@dataclass
class Outcome:
    committed: int = 0
    conflicts: int = 0
    published: int = 0
    actions: int = 0
    counters: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    new: list[Enrollment] = field(default_factory=list)


class Committer:
    """Publish actions, then commit each transition conditionally, then add funnel counters.

    Transitions go in chunks of up to 25: a chunk publishes its transitions' actions, then commits
    them — existing enrollments in one ``BatchExecuteStatement`` (a conditional UPDATE per
    enrollment on its revision; each statement independent, so a lost race fails only its own),
    new ones as conditional puts (``attribute_not_exists``). A chunk commits nothing unless all its
    actions are on the bus. With ``workers`` > 1 the chunks run on a small pool: their publish and
    commit calls overlap instead of queueing one after another. Counters are added for whatever
    committed, then the first failure (a publish that raised) is raised."""

    def __init__(self, repo: JourneysRepository, publisher: Publisher, workers: int = 1) -> None:
        self.repo = repo
        self.publisher = publisher
        self.workers = workers

    def commit(self, pending: Sequence[Pending], now: datetime, correlation: str | None = None) -> Outcome:
        out = Outcome()
        for p in pending:
            p.transition.enrollment.rev = (p.expected or 0) + 1
        updates = [n for n, p in enumerate(pending) if p.expected is not None]
        creates = [n for n, p in enumerate(pending) if p.expected is None]
        step = STATEMENTS_PER_BATCH
        chunks = [updates[i : i + step] for i in range(0, len(updates), step)]
        chunks += [creates[i : i + step] for i in range(0, len(creates), step)]

        def run(chunk: list[int]) -> tuple[int, list[tuple[int, bool]]]:
            events = [
                action_event(a, pending[n].transition.enrollment, pending[n].profile, now, correlation)
                for n in chunk
                for a in pending[n].transition.actions
            ]
            if events:
                self.publisher.publish(events)  # raises: this chunk commits nothing, the caller retries
            if pending[chunk[0]].expected is not None:
                writes = [
                    (pending[n].transition.enrollment, int(pending[n].expected or 0), pending[n].parked)
                    for n in chunk
                ]
                return len(events), list(zip(chunk, self.repo.save_enrollments(writes), strict=True))
            done = []
            for n in chunk:
                try:
                    self.repo.save_enrollment(
                        pending[n].transition.enrollment, expected_rev=None, parked=pending[n].parked
                    )
                    done.append((n, True))
                except ConditionFailed:
                    done.append((n, False))
            return len(events), done

        def attempt(chunk: list[int]) -> tuple[int, list[tuple[int, bool]], BaseException | None]:
            try:
                published, done = run(chunk)
            except Exception as exc:  # counted below: what committed still gets its counters
                return 0, [], exc
            return published, done, None

        if self.workers > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(self.workers, len(chunks))) as pool:
                results = list(pool.map(attempt, chunks))
        else:
            results = []
            for chunk in chunks:
                results.append(attempt(chunk))
                if results[-1][2] is not None:
                    break  # in order, as before: nothing after a failed publish
        ok: dict[int, bool] = {}
        failure: BaseException | None = None
        for published, done, error in results:
            out.published += published
            ok.update(done)
            failure = failure or error
        for n, p in enumerate(pending):
            if n not in ok:
                continue  # its chunk failed before committing: not a conflict, the caller retries
            if not ok[n]:
                out.conflicts += 1
                continue
            out.committed += 1
            out.actions += len(p.transition.actions)
            e = p.transition.enrollment
            out.counters[f"{e.tenant_id}\x1f{e.journey_id}"].update(p.transition.counters)
            if p.expected is None:
                out.new.append(e)
        for key, counts in out.counters.items():
            tenant, journey_id = key.split("\x1f")
            self.repo.add_counters(tenant, journey_id, dict(counts))
        if out.new:
            self.repo.index_enrollments(out.new)
        if failure is not None:
            raise failure
        return out


# ------------------------------------------------------------------ bus events
@dataclass
class TenantEnv:
    timezone: str = "Asia/Shanghai"
    max_wait: timedelta = timedelta(days=365)


class JourneysService:
    """segment.entered|exited and profile.changed|merged|erased -> enrol, exit, resume."""

    def __init__(
        self,
        repo: JourneysRepository,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        definitions: Definitions | None = None,
        tenant_env: Callable[[str], TenantEnv] | None = None,
    ) -> None:
        self.repo = repo
        self.clock = clock or default_clock()
        self.definitions = definitions or Definitions(repo)
        self.committer = Committer(repo, publisher)
        self.tenant_env = tenant_env or (lambda tenant: TenantEnv())
        self.skipped = 0  # profile.changed dropped before any read (see Interest.matters)

    def env(self, tenant: str) -> Env:
        return Env(tenant_timezone=self.tenant_env(tenant).timezone)

    @property
    def accepts(self) -> tuple[type[Any], ...]:
        from huiliu.contracts import (
            ProfileChanged,
            ProfileErased,
            ProfileMerged,
            SegmentEntered,
            SegmentExited,
        )

        return (ProfileChanged, ProfileMerged, ProfileErased, SegmentEntered, SegmentExited)

    def handle(self, event: Any) -> list[OutgoingEvent]:
        """The stage runner's entry (huiliu.stage). Actions are published here, *before* each
        conditional commit (exactly-once, see the module docstring), so nothing is returned."""
        self.last = self.handle_detail(event.DETAIL_TYPE, event.model_dump(mode="json"))
        return []

    def handle_detail(self, detail_type: str, detail: dict[str, Any]) -> Outcome | None:
        tenant = str(detail["tenant_id"])
        if detail_type == "profile.erased":
            return self._erase(tenant, detail)
        if not self.definitions.heads(tenant):
            return None  # no journeys at all for this tenant: nothing to read or write
        if detail_type == "profile.changed":
            if not self.definitions.interest(tenant).matters(detail):
                self.skipped += 1
                return None  # nothing any journey (any version) reacts to, nothing projected changed
            return self._profile_changed(tenant, detail)
        if detail_type in ("segment.entered", "segment.exited"):
            if not self.definitions.interest(tenant).hears_segment(str(detail["segment_id"])):
                self.skipped += 1
                return None  # a segment no journey (any version) triggers on, exits on or branches on
            return self._segment(tenant, detail, entered=detail_type == "segment.entered")
        if detail_type == "profile.merged":
            return self._merged(tenant, detail)
        return None

    # -- profile.changed: exits, goals, waits for an event; then triggers ----------------
    def _profile_changed(self, tenant: str, detail: dict[str, Any]) -> Outcome:
        now = self.clock.now()
        profile_id = str(detail["profile_id"])
        stored, enrollments, guards = self.repo.load_partition(tenant, profile_id)
        interest = self.definitions.interest(tenant)
        view = interest.projects(_merge_snapshot(profile_from_item(profile_id, stored), detail))
        raw_event = detail.get("event") or None
        event = None
        if raw_event and raw_event.get("name"):
            event = EventInfo(
                event_id=str(raw_event.get("message_id") or detail.get("event_id")),
                name=str(raw_event["name"]),
                properties=dict(raw_event.get("properties") or {}),
                timestamp=raw_event.get("timestamp"),
            )
            if interest.keeps_seen(event.name):
                view.seen[event.name] = iso(now)
        env = self.env(tenant)
        pending: list[Pending] = []
        if event is not None:
            for e in enrollments:
                if event.event_id in e.applied:
                    continue
                e, journey = self.definitions.current(tenant, e, now)
                if journey is None:
                    continue
                if self.definitions.status(tenant, e.journey_id) == ARCHIVED:
                    tr = cancel(e, "archived", now)
                else:
                    tr = on_event(journey, e, view, event, now, env)
                if tr is not None:
                    _mark_applied(tr.enrollment, event.event_id)
                    pending.append(Pending(tr, e.rev, view))
        trigger_kind = "event" if event is not None else None
        pending += self._enrolments(
            tenant,
            view,
            enrollments,
            now,
            env,
            match=lambda j: _event_trigger(j, event, detail),
            trigger={
                "kind": trigger_kind or "profile_created",
                "event_id": event.event_id if event else str(detail.get("event_id")),
                "event": event.name if event else None,
                "properties": event.properties if event else {},
            },
            instance_of=lambda j: _instance_value(j, event),
            guards=guards,
        )
        return self._finish(tenant, view, enrollments, pending, now, detail, stored)

    # -- segment.entered / exited ---------------------------------------------------------
    def _segment(self, tenant: str, detail: dict[str, Any], *, entered: bool) -> Outcome:
        now = self.clock.now()
        profile_id = str(detail["profile_id"])
        segment_id = str(detail["segment_id"])
        stored, enrollments, guards = self.repo.load_partition(tenant, profile_id)
        view = profile_from_item(profile_id, stored)
        if isinstance(detail.get("profile"), dict):
            snapshot = {"version": detail.get("profile_version", 0), "profile": detail["profile"]}
            view = self.definitions.interest(tenant).projects(_merge_snapshot(view, snapshot))
        segments = set(view.segments)
        segments.add(segment_id) if entered else segments.discard(segment_id)
        view.segments = sorted(segments)
        env = self.env(tenant)
        event_id = str(detail.get("event_id"))
        pending: list[Pending] = []
        for e in enrollments:
            if event_id in e.applied:
                continue
            e, journey = self.definitions.current(tenant, e, now)
            if journey is None:
                continue
            tr = on_segment(journey, e, segment_id, entered, now)
            if tr is not None:
                _mark_applied(tr.enrollment, event_id)
                pending.append(Pending(tr, e.rev, view))
        backfill = bool(detail.get("backfill")) or bool(detail.get("replay"))

        def match(j: Journey) -> bool:
            target = j.trigger.segment_entered if entered else j.trigger.segment_exited
            return target == segment_id and (j.trigger.include_backfill or not backfill)

        pending += self._enrolments(
            tenant,
            view,
            enrollments,
            now,
            env,
            match=match,
            trigger={
                "kind": "segment_entered" if entered else "segment_exited",
                "event_id": event_id,
                "segment": segment_id,
            },
            instance_of=lambda j: None,
            guards=guards,
        )
        return self._finish(tenant, view, enrollments, pending, now, detail, stored)

    # -- enrolment -------------------------------------------------------------------------
    def _enrolments(
        self,
        tenant: str,
        view: ProfileView,
        enrollments: list[Enrollment],
        now: datetime,
        env: Env,
        *,
        match: Callable[[Journey], bool],
        trigger: dict[str, Any],
        instance_of: Callable[[Journey], str | None],
        guards: dict[str, dict[str, Any]],
    ) -> list[Pending]:
        out: list[Pending] = []
        for journey in self.definitions.active(tenant):
            if not match(journey):
                continue
            instance = instance_of(journey)
            if journey.instance is not None and instance is None:
                continue  # a per-order journey needs the order id on the event
            mine = [e for e in enrollments if e.journey_id == journey.id]
            key = enrollment_key(journey, str(trigger["event_id"]), instance)
            if any(e.key == key for e in mine):
                continue  # already enrolled under this key (once, the same order, a redelivery)
            if journey.entry.policy == "once" and mine and journey.instance is None:
                continue
            # Decisions over several keys (per-order bound, once per period) are serialised by the
            # person's entry guard (JourneysRepository.claim_entry); losing the race fails the
            # record, and its redelivery decides again from the winner's claim.
            guarded = journey.instance is not None or journey.entry.policy == "once_per_period"
            if guarded and not self._guarded_entry(tenant, view.profile_id, journey, mine, key, guards, now):
                continue
            tr = enroll(journey, tenant, view, trigger=trigger, key=key, instance=instance, now=now, env=env)
            out.append(Pending(tr, None, view))
        return out

    def _guarded_entry(
        self,
        tenant: str,
        profile_id: str,
        journey: Journey,
        mine: list[Enrollment],
        key: str,
        guards: dict[str, dict[str, Any]],
        now: datetime,
    ) -> bool:
        guard = guards.get(journey.id) or {}
        existing = {e.key for e in mine}
        fresh = iso(now - CLAIM_TTL)
        # Claims whose enrollment is not written yet (being entered now, or a crashed attempt that
        # SQS will redeliver; one older than CLAIM_TTL is abandoned). One's own key is a retry.
        claims = [
            {"key": str(c["key"]), "at": str(c["at"])}
            for c in guard.get("claims") or []
            if c["key"] not in existing and c["key"] != key and str(c["at"]) > fresh
        ]
        if journey.entry.policy == "once_per_period":
            period = parse_duration(journey.entry.period or "0s")
            entered = [e.entered_at for e in mine] + [c["at"] for c in claims]
            if entered and max(entered) > iso(now - period):
                return False
        if journey.instance is not None:
            live = sum(1 for e in mine if e.live) + len(claims)
            if live >= journey.instance.max_concurrent:
                logger.info("instance bound reached", extra={"journey_id": journey.id, "live": live})
                return False
        self.repo.claim_entry(
            tenant,
            profile_id,
            journey.id,
            expected_seq=int(guard.get("seq", 0)),
            claims=[*claims, {"key": key, "at": iso(now)}],
            key=key,
            at=iso(now),
        )
        return True

    def _finish(
        self,
        tenant: str,
        view: ProfileView,
        enrollments: list[Enrollment],
        pending: list[Pending],
        now: datetime,
        detail: dict[str, Any],
        stored: dict[str, Any] | None,
    ) -> Outcome:
        # The projection is needed only while the person is (or becomes) enrolled: skip it otherwise,
        # and skip it when nothing journeys keep changed (most events of an enrolled person).
        still_live = any(e.live or e.watching_goal for e in enrollments) or any(
            p.transition.enrollment.live for p in pending
        )
        touched = self.definitions.interest(tenant).touches_projection(detail)
        if (still_live or stored is not None) and _projection_changed(stored, view, touched):
            self.repo.put_profile(tenant, view)
        outcome = self.committer.commit(pending, now, detail.get("correlation_id"))
        if outcome.conflicts:
            raise ConditionFailed(f"{outcome.conflicts} enrollment(s) changed meanwhile: retry the event")
        return outcome

    # -- merged / erased -------------------------------------------------------------------
    def _merged(self, tenant: str, detail: dict[str, Any]) -> Outcome:
        """The absorbed profile's live enrollments move to the survivor (same ids, same actions)."""
        now = self.clock.now()
        absorbed = str(detail.get("absorbed_id"))
        survivor = str(detail["profile_id"])
        stored, enrollments = self.repo.load_person(tenant, absorbed)
        _, survivor_enrollments = self.repo.load_person(tenant, survivor)
        taken = {(e.journey_id, e.key) for e in survivor_enrollments}
        view = profile_from_item(absorbed, stored)
        pending: list[Pending] = []
        for e in enrollments:
            if not e.live:
                continue
            tr = cancel(e, f"merged_into:{survivor}", now)
            if tr is None:
                continue
            pending.append(Pending(tr, e.rev, view))
            if (e.journey_id, e.key) not in taken:
                moved = e.copy()
                moved.profile_id = survivor
                moved.rev = 0
                moved.log = [
                    *moved.log,
                    {"at": iso(now), "step": e.step_id, "what": "moved", "from": absorbed},
                ]
                pending.append(Pending(Transition(moved), None, view))
        if stored is not None and pending:
            # Until the survivor's next profile.changed, its projection is the absorbed one's.
            survivor_view = profile_from_item(survivor, stored)
            survivor_view.version = 0
            self.repo.put_profile(tenant, survivor_view)
        return self.committer.commit(pending, now, detail.get("correlation_id"))

    def _erase(self, tenant: str, detail: dict[str, Any]) -> Outcome:
        ids = {str(p) for p in (detail.get("profile_ids") or [])} | {str(detail["profile_id"])}
        for profile_id in sorted(ids):
            self.repo.delete_person(tenant, profile_id)
        return Outcome()


def _mark_applied(e: Enrollment, event_id: str) -> None:
    e.applied = [*e.applied, event_id][-MAX_APPLIED:]


PROJECTED = ("traits", "tags", "computed", "identifiers", "segments", "seen")


def _projection_changed(stored: dict[str, Any] | None, view: ProfileView, touched: bool) -> bool:
    """Write the projection when a field journeys keep differs from the stored one — or when the
    change set says a projected field changed (an A -> B -> A flip must still move the version on,
    so an older snapshot delivered late is ignored). Otherwise the newer version's projected fields
    equal the stored ones, and a late older snapshot cannot carry anything different either."""
    if stored is None:
        return True
    before = profile_from_item(view.profile_id, stored)
    if any(getattr(before, name) != getattr(view, name) for name in PROJECTED):
        return True
    return touched and view.version > before.version


def _merge_snapshot(view: ProfileView, detail: dict[str, Any]) -> ProfileView:
    snapshot = detail.get("profile")
    version = int(detail.get("version") or 0)
    if not isinstance(snapshot, dict) or version < view.version:
        return view
    return ProfileView(
        profile_id=view.profile_id,
        version=version,
        traits=dict(snapshot.get("traits") or {}),
        tags=list(snapshot.get("tags") or []),
        computed=dict(snapshot.get("computed") or {}),
        identifiers=[{"type": i["type"], "value": i["value"]} for i in snapshot.get("identifiers") or []],
        segments=view.segments,
        seen=view.seen,
    )


def _event_trigger(journey: Journey, event: EventInfo | None, detail: dict[str, Any]) -> bool:
    trigger = journey.trigger
    if trigger.profile_created:
        return bool(detail.get("created")) and not detail.get("replay")
    if trigger.event is None or event is None or detail.get("replay"):
        return False
    return trigger.event == event.name and all_match(trigger.where, event.properties)


def _instance_value(journey: Journey, event: EventInfo | None) -> str | None:
    if journey.instance is None or event is None:
        return None
    value = lookup(event.properties, journey.instance.key)
    return None if value is None or isinstance(value, dict | list) or value is object() else str(value)


# ------------------------------------------------------------------ the minute tick
@dataclass
class TickReport:
    now: str
    due: int = 0
    stepped: int = 0
    conflicts: int = 0
    parked: int = 0
    actions: int = 0
    published: int = 0
    seconds: float = 0.0
    lateness_seconds: list[float] = field(default_factory=list)


class JourneyTicker:
    """Everything due at or before ``now``: shard by shard, page by page, a pool of workers."""

    def __init__(
        self,
        repo: JourneysRepository,
        publisher: Publisher,
        *,
        definitions: Definitions | None = None,
        tenant_env: Callable[[str], TenantEnv] | None = None,
        workers: int = 8,
        page_size: int = 100,
    ) -> None:
        self.repo = repo
        self.definitions = definitions or Definitions(repo)
        self.committer = Committer(repo, publisher, workers=workers)
        self.tenant_env = tenant_env or (lambda tenant: TenantEnv())
        self.page_size = page_size
        self.workers = workers

    def tick(self, now: datetime) -> TickReport:
        started = time.perf_counter()
        report = TickReport(now=iso(now))
        upto = iso(now)
        shards = self.repo.all_shards()
        if self.workers > 1:
            with ThreadPoolExecutor(min(self.workers, len(shards))) as pool:
                reports = list(pool.map(lambda s: self._shard(s, upto, now), shards))
        else:
            reports = [self._shard(s, upto, now) for s in shards]
        for r in reports:
            for name in ("due", "stepped", "conflicts", "parked", "actions", "published"):
                setattr(report, name, getattr(report, name) + getattr(r, name))
            report.lateness_seconds += r.lateness_seconds
        report.seconds = time.perf_counter() - started
        return report

    def _shard(self, shard: str, upto: str, now: datetime) -> TickReport:
        report = TickReport(now=upto)
        for page in self.repo.due(shard, upto, self.page_size, keys_only=True):
            report.due += len(page)
            self._page(page, now, report)
        return report

    def _page(self, page: list[dict[str, Any]], now: datetime, report: TickReport) -> None:
        # The due index is eventually consistent: re-read enrollments (and projections) strongly.
        keys = [(i["pk"], i["sk"]) for i in page]
        keys += [(profile_pk(i["tenant_id"], i["profile_id"]), "PROFILE") for i in page]
        fresh = self.repo.get_many(keys)
        pending: list[Pending] = []
        for item in page:
            current = fresh.get((item["pk"], item["sk"]))
            if current is None:
                continue
            e = enrollment_from_item(current)
            if not e.live or not e.next_at or e.next_at > iso(now):
                continue
            status = self.definitions.status(e.tenant_id, e.journey_id)
            if status == PAUSED:
                # Park it under the journey's paused key until resume (the tick stops reading it).
                pending.append(
                    Pending(
                        Transition(e.copy()),
                        e.rev,
                        ProfileView(e.profile_id),
                        paused_shard(e.tenant_id, e.journey_id),
                    )
                )
                report.parked += 1
                continue
            e, journey = self.definitions.current(e.tenant_id, e, now)
            if journey is None:
                continue
            profile = profile_from_item(
                e.profile_id, fresh.get((profile_pk(e.tenant_id, e.profile_id), "PROFILE"))
            )
            if status == ARCHIVED:
                tr = cancel(e, "archived", now)
            else:
                env = Env(tenant_timezone=self.tenant_env(e.tenant_id).timezone)
                tr = on_due(journey, e, profile, now, env)
            if tr is None:
                continue
            if e.next_at:
                report.lateness_seconds.append((now - _parse(e.next_at)).total_seconds())
            pending.append(Pending(tr, e.rev, profile))
        if not pending:
            return
        outcome = self.committer.commit(pending, now)
        report.stepped += outcome.committed - sum(1 for p in pending if p.parked)
        report.conflicts += outcome.conflicts
        report.actions += outcome.actions
        report.published += outcome.published


class JourneyTickService:
    """The stage runner's TickService: steps what is due and publishes itself (returns nothing)."""

    def __init__(self, ticker: JourneyTicker) -> None:
        self.ticker = ticker
        self.last: TickReport | None = None

    def tick(self, now: datetime) -> list[OutgoingEvent]:
        report = self.ticker.tick(now)
        self.last = report
        logger.info(
            "journey tick",
            extra={
                "tick": report.now,
                "due": report.due,
                "stepped": report.stepped,
                "conflicts": report.conflicts,
                "parked": report.parked,
                "actions": report.actions,
                "seconds": round(report.seconds, 3),
            },
        )
        return []


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def resume_parked(repo: JourneysRepository, tenant: str, journey_id: str) -> int:
    """Put a resumed journey's parked enrollments back in the due index (each at its own time)."""
    moved = 0
    for page in repo.due(paused_shard(tenant, journey_id), "9999", 100):
        for item in page:
            e = enrollment_from_item(item)
            try:
                e.rev = int(item["rev"]) + 1
                repo.save_enrollment(e, expected_rev=int(item["rev"]))
                moved += 1
            except ConditionFailed:
                continue
    return moved


def iter_due_counts(repo: JourneysRepository, upto: datetime) -> Iterable[tuple[str, int]]:
    for shard in repo.all_shards():
        yield shard, sum(len(p) for p in repo.due(shard, iso(upto)))


__all__ = ["Definitions", "JourneyTicker", "JourneysService", "TenantEnv", "resume_parked", "stable_id"]
