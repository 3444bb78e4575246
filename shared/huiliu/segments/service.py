"""The segments stage: real-time membership on profile events, and the due-time sweep.

``SegmentsService.handle`` (queue: ``profile.changed|merged|unmerged|erased``,
``profiles.replay_completed``) and ``SegmentsService.tick`` (the sweep schedule). Per event it makes
one BatchGetItem (the profile's state, plus absorbed profiles' states on a merge) and writes only
when something segments keep changed: one conditional PutItem of the state, which holds all the
profile's memberships (lists and counts read them through the tenant index). No transaction, no
membership item, no counter. No AWS call lives here: the store does it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from huiliu.bus import Publisher
from huiliu.clock import Clock, default_clock
from huiliu.contracts import (
    BusEvent,
    ProfileChanged,
    ProfileErased,
    ProfileMerged,
    ProfileSnapshot,
    ProfileUnmerged,
    ReplayCompleted,
    SegmentEntered,
    SegmentExited,
    derive_event_id,
)
from huiliu.errors import ConditionFailed
from huiliu.segments.builtin import TenantModels, epoch, rfm_from_histograms, rfm_histogram
from huiliu.segments.engine import (
    ProfileState,
    StoredSegment,
    TenantPlan,
    changes_nothing_kept,
    evaluate,
    log_occurrence,
    merge_logs,
    projection_diff,
    prune_log,
    remember_seen,
)
from huiliu.segments.language import parse_definition
from huiliu.segments.repository import DUE_SHARDS, Commit, SegmentsStore, iso_of

MAX_ATTEMPTS = 8
RFM_CHECK_SECONDS = 600.0
RFM_SAMPLE = 20_000  # kept states read for the daily RFM breakpoints (~10,000 read units at most)
SWEEP_PAGE = 200


class Contention(Exception):
    """The state kept changing under us: SQS redelivers the record."""


@dataclass
class Metrics:
    events: int = 0
    evaluated: int = 0
    writes: int = 0
    dropped_stale: int = 0
    skipped: int = 0  # profile.changed decided without a read (nothing kept changed)
    swept: int = 0


def _now_iso(now: float) -> str:
    return iso_of(now)


def _comparable(state: ProfileState) -> dict[str, Any]:
    item = state.to_item()
    for key in ("version", "last_event_id", "outbox", "seen"):
        item.pop(key)
    return item


class SegmentsService:
    def __init__(
        self,
        store: SegmentsStore,
        *,
        clock: Clock | None = None,
        cache_seconds: float = 30.0,
        include_profile: bool = True,
        sweep_publisher: Publisher | None = None,
    ) -> None:
        self.store = store
        # The sweep publishes a profile's transitions BEFORE committing them (same event ids on a
        # retry, which consumers dedupe): once committed, the profile is no longer due, so events
        # returned to the runner after the commit would be lost if their publish failed.
        self.sweep_publisher = sweep_publisher
        self._clock = clock
        self.cache_seconds = cache_seconds
        self.include_profile = include_profile
        self._plans: dict[str, tuple[float, TenantPlan]] = {}
        self._replays: set[str] = set()
        self._rfm_checked: dict[str, float] = {}
        self.metrics = Metrics()

    @property
    def clock(self) -> Clock:
        """The injected clock, else the process clock (the local runtime swaps it)."""
        return self._clock or default_clock()

    accepts: tuple[type[BusEvent], ...] = (
        ProfileChanged,
        ProfileMerged,
        ProfileUnmerged,
        ProfileErased,
        ReplayCompleted,
    )

    # -- plans ------------------------------------------------------------------------------------
    def plan(self, tenant: str) -> TenantPlan:
        cached = self._plans.get(tenant)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        items, models, generation = self.store.load_definitions(tenant)
        segments = [
            StoredSegment(
                parse_definition(item["definition"]),
                int(item["version"]),
                item.get("created_at", ""),
                item.get("updated_at", ""),
            )
            for item in items
        ]
        plan = TenantPlan(
            segments, TenantModels.model_validate(models) if models else TenantModels(), generation
        )
        self._plans[tenant] = (time.monotonic(), plan)
        return plan

    def invalidate(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._plans.clear()
        else:
            self._plans.pop(tenant, None)

    # -- dispatch ---------------------------------------------------------------------------------
    def handle(self, event: BusEvent) -> Sequence[BusEvent]:
        self.metrics.events += 1
        if isinstance(event, ProfileChanged):
            out = self._retry(lambda: self._changed(event))
            if event.replay and event.replay_id:
                entered = sum(1 for e in out if isinstance(e, SegmentEntered))
                self.store.add_progress(event.tenant_id, event.replay_id, 1, entered)
            return out
        if isinstance(event, ProfileMerged):
            return self._retry(
                lambda: self._end(event, [event.absorbed_id], "merge", tombstone=event.profile_id)
            )
        if isinstance(event, ProfileErased):
            ids = list(dict.fromkeys([event.profile_id, *event.profile_ids]))
            return self._retry(lambda: self._end(event, ids, "erase"))
        if isinstance(event, ReplayCompleted):
            self.store.put_progress(
                event.tenant_id,
                event.replay_id,
                {"status": "completed", "profiles": event.profiles, "completed_at": event.occurred_at},
            )
            return []
        # profile.unmerged: the two profile.changed identity emits with it do the work
        return []

    def _retry(self, attempt: Callable[[], Sequence[BusEvent]]) -> Sequence[BusEvent]:
        for _ in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except ConditionFailed:
                continue
        raise Contention("state kept changing; SQS will redeliver")

    # -- profile.changed --------------------------------------------------------------------------
    def _changed(self, ev: ProfileChanged) -> Sequence[BusEvent]:
        tenant, pid = ev.tenant_id, ev.profile_id
        if ev.replay and ev.replay_id and ev.replay_id not in self._replays:
            self._replays.add(ev.replay_id)  # a backfill follows a change of definitions: reload them
            self.invalidate(tenant)
        plan = self.plan(tenant)
        if not plan.segments:
            return []  # a tenant without segments costs nothing here (a backfill follows the first one)
        if changes_nothing_kept(plan, ev):
            self.metrics.skipped += 1
            return []  # most browsing: no DynamoDB call at all
        now = self.clock.now().timestamp()
        absorbed_ids = [a for a in ev.merged_from if a != pid]
        loaded = self.store.get_states(tenant, [pid, *absorbed_ids])
        held, wv = loaded.get(pid, (None, None))
        if held is not None and held.generation > plan.generation:
            self.invalidate(tenant)  # another container already evaluated with newer definitions
            plan = self.plan(tenant)
        if held is not None and held.last_event_id == ev.event_id:
            return self._rebuild(held, ev)  # redelivered after the commit: publish the same events
        fresh = held is None or held.merged_into is not None  # a restored (unmerged) profile starts anew
        state = ProfileState(tenant, pid) if fresh else held.copy()  # type: ignore[union-attr]
        # a replay of the version we hold is as new as ours (and projected for today's segments)
        stale = not fresh and (ev.version < state.version or (ev.version == state.version and not ev.replay))
        keys: set[str] = set()
        if ev.event is not None and not ev.replay and ev.version not in state.seen:
            name = ev.event.name or ev.event.type
            if log_occurrence(plan, state.log, name, ev.event.timestamp, ev.event.properties, now):
                remember_seen(state, ev.version)
                keys.add(f"events.{name}")
        folded: list[ProfileState] = []
        for aid in absorbed_ids:
            other = loaded.get(aid)
            if other is not None and aid not in state.absorbed:
                merge_logs(state.log, other[0].log)
                prune_log(plan, state.log, now)
                state.absorbed = [*state.absorbed, aid][-50:]
                folded.append(other[0])
        if stale:
            if not keys and not (ev.replay and state.revision != plan.revision):
                self.metrics.dropped_stale += 1
                return []
        else:
            snapshot = plan.project(ev.profile)
            keys |= projection_diff(state.snapshot, snapshot)
            state.snapshot = snapshot
            state.version = ev.version
        time_passed = state.due is not None and state.due <= now  # the sweep has not got here yet
        if (
            fresh
            or time_passed
            or state.revision != plan.revision
            or absorbed_ids
            or (ev.replay and not stale)
        ):
            only = None
        else:
            only = plan.touched(keys)
        result = evaluate(plan, state, now, only) if only is None or only else None
        evaluated = result.evaluated if result else 0
        self.metrics.evaluated += evaluated
        out = self._transitions(state, result, ev, "conditions") if result else []
        _stamp(state, out, now)
        if held is not None and not fresh and _comparable(state) == _comparable(held):
            return out  # nothing segments keep changed: no write
        state.last_event_id = ev.event_id
        # compact: "+" entered, "-" exited (the ids are derived again from the event on redelivery)
        state.outbox = [
            ["+" if isinstance(e, SegmentEntered) else "-", e.segment_id, e.segment_version]
            for e in out
            if isinstance(e, SegmentEntered | SegmentExited)
        ]
        self.store.commit(Commit(state, wv))  # one conditional PutItem, whatever changed
        self.metrics.writes += 1
        for absorbed in folded:
            out = [*out, *self._end_state(absorbed, "merge", ev, tombstone=None)]
        return out

    def _transitions(self, state: ProfileState, result: Any, ev: BusEvent, reason: str) -> list[BusEvent]:
        if result is None:
            return []
        plan_versions = dict(state.members)
        out: list[BusEvent] = []
        snapshot = getattr(ev, "profile", None) if self.include_profile else None
        occurred = _now_iso(self.clock.now().timestamp())
        for kind, ids in ((SegmentEntered, result.entered), (SegmentExited, result.exited)):
            for sid in ids:
                out.append(
                    kind(
                        event_id=derive_event_id(ev.event_id, kind.DETAIL_TYPE, state.profile_id, sid),
                        tenant_id=state.tenant_id,
                        correlation_id=ev.correlation_id,
                        occurred_at=occurred,
                        segment_id=sid,
                        segment_version=plan_versions.get(sid, self._version(state.tenant_id, sid)),
                        profile_id=state.profile_id,
                        profile_version=state.version,
                        reason=reason,
                        backfill=bool(getattr(ev, "replay", False)),
                        profile=snapshot if kind is SegmentEntered else None,
                    )
                )
        return out

    def _version(self, tenant: str, sid: str) -> int:
        seg = self.plan(tenant).segments.get(sid)
        return seg.version if seg else 0

    def _rebuild(self, held: ProfileState, ev: ProfileChanged) -> list[BusEvent]:
        out: list[BusEvent] = []
        for sign, sid, version in held.outbox:
            kind = SegmentEntered if sign == "+" else SegmentExited
            out.append(
                kind(
                    event_id=derive_event_id(ev.event_id, kind.DETAIL_TYPE, held.profile_id, sid),
                    tenant_id=held.tenant_id,
                    correlation_id=ev.correlation_id,
                    occurred_at=ev.occurred_at,
                    segment_id=sid,
                    segment_version=int(version),
                    profile_id=held.profile_id,
                    profile_version=held.version,
                    reason="conditions",
                    backfill=ev.replay,
                    profile=ev.profile if kind is SegmentEntered and self.include_profile else None,
                )
            )
        return out

    # -- merge / erase ----------------------------------------------------------------------------
    def _end(
        self, ev: BusEvent, profile_ids: list[str], reason: str, tombstone: str | None = None
    ) -> Sequence[BusEvent]:
        loaded = self.store.get_states(ev.tenant_id, profile_ids)
        out: list[BusEvent] = []
        for pid in profile_ids:
            if pid in loaded:
                out += self._end_state(loaded[pid][0], reason, ev, tombstone=tombstone, wv=loaded[pid][1])
        return out

    def _end_state(
        self, held: ProfileState, reason: str, ev: BusEvent, *, tombstone: str | None, wv: int | None = None
    ) -> list[BusEvent]:
        """End every membership of a profile; keep a tombstone (with its log) or delete the state."""
        if wv is None:
            wv = self.store.get_states(held.tenant_id, [held.profile_id]).get(held.profile_id, (None, None))[
                1
            ]
            if wv is None:
                return []
        if tombstone is not None and held.merged_into == tombstone and not held.members:
            return []  # already ended
        occurred = _now_iso(self.clock.now().timestamp())
        out: list[BusEvent] = [
            SegmentExited(
                event_id=derive_event_id(ev.event_id, SegmentExited.DETAIL_TYPE, held.profile_id, sid),
                tenant_id=held.tenant_id,
                correlation_id=ev.correlation_id,
                occurred_at=occurred,
                segment_id=sid,
                segment_version=version,
                profile_id=held.profile_id,
                profile_version=held.version,
                reason=reason,
            )
            for sid, version in sorted(held.members.items())
        ]
        state = held.copy()
        # a tombstone keeps its log (the survivor folds it in) and leaves every count and RFM sample
        state.members, state.since, state.due = {}, {}, None
        if tombstone is not None:
            state.merged_into = tombstone
        self.store.commit(Commit(state, wv, delete_state=tombstone is None))
        self.metrics.writes += 1
        return out

    # -- the sweep --------------------------------------------------------------------------------
    def tick(self, now: datetime) -> Sequence[BusEvent]:
        """Re-evaluate exactly the profiles whose due time is at or before ``now`` (no scan)."""
        moment = now.astimezone(UTC).timestamp()
        until = _now_iso(moment)
        out: list[BusEvent] = []
        seen: set[tuple[str, str]] = set()
        shards = list(range(DUE_SHARDS))
        while shards:
            # the shards are independent partitions: ask them at once (an idle tick is one round trip)
            with ThreadPoolExecutor(max_workers=8) as pool:
                pages = list(pool.map(lambda n: self.store.due_keys(n, until, SWEEP_PAGE), shards))
            full = [n for n, page in zip(shards, pages, strict=True) if len(page) >= SWEEP_PAGE]
            keys = [k for page in pages for k in page if k not in seen]
            seen.update(keys)
            by_tenant: dict[str, list[str]] = {}
            for tenant, pid in keys:
                by_tenant.setdefault(tenant, []).append(pid)
            for tenant, pids in by_tenant.items():
                for start in range(0, len(pids), 100):
                    out += self._sweep(tenant, pids[start : start + 100], moment)
            # a full page may hold more: its profiles now have later dues, so ask that shard again
            shards = full if keys else []
        return out

    def _sweep(self, tenant: str, pids: list[str], now: float) -> list[BusEvent]:
        plan = self.plan(tenant)
        out: list[BusEvent] = list(self.refresh_rfm(tenant, now))
        loaded = self.store.get_states(tenant, pids)
        for pid in pids:
            if pid not in loaded:
                continue
            for _ in range(MAX_ATTEMPTS):
                held, wv = loaded[pid]
                try:
                    out += self._sweep_one(plan, held, wv, now)
                    break
                except ConditionFailed:
                    loaded.update(self.store.get_states(tenant, [pid]))
                    if pid not in loaded:
                        break
        return out

    def _sweep_one(self, plan: TenantPlan, held: ProfileState, wv: int, now: float) -> list[BusEvent]:
        self.metrics.swept += 1
        if held.generation > plan.generation:
            self.invalidate(held.tenant_id)
            plan = self.plan(held.tenant_id)
        if (held.due is None or held.due > now) and held.revision == plan.revision:
            return []  # the index lagged behind a write that moved the due time: nothing to do
        state = held.copy()
        prune_log(plan, state.log, now)
        # every segment: the due time says "something may change now", not which
        result = evaluate(plan, state, now, None)
        self.metrics.evaluated += result.evaluated
        due_key = iso_of(held.due) if held.due is not None else "revision"
        tick_event = _TickCause(
            event_id=derive_event_id(state.tenant_id, state.profile_id, "time", due_key),
            tenant_id=state.tenant_id,
            occurred_at=_now_iso(now),
        )
        out = self._transitions(state, result, tick_event, "time")
        if out and self.sweep_publisher is not None:
            self.sweep_publisher.publish([e.outgoing() for e in out])
        _stamp(state, out, now)
        state.outbox = []
        state.last_event_id = tick_event.event_id
        self.store.commit(Commit(state, wv))
        self.metrics.writes += 1
        return out if self.sweep_publisher is None else []

    # -- RFM breakpoints, recomputed on the sweep's schedule --------------------------------------
    def rfm_histogram(self, tenant: str, sample: int = RFM_SAMPLE) -> dict[str, int]:
        """The RFM histogram of the tenant's buyers, from up to ``sample`` kept states read through
        the tenant index (ordered by profile id, i.e. a uniform sample; every profile below that
        size). Read once a day: nothing is written per order to keep it."""
        states: list[ProfileState] = []
        cursor: str | None = None
        while len(states) < sample:
            limit = min(1000, sample - len(states))
            page, cursor = self.store.states_page(tenant, limit=limit, cursor=cursor)
            states += [s for s in page if s.merged_into is None]
            if not cursor:
                break
        return rfm_histogram(s.snapshot.get("computed") or {} for s in states)

    def refresh_rfm(self, tenant: str, now: float) -> list[BusEvent]:
        """Recompute the tenant's RFM breakpoints from its histograms when they are older than
        ``rfm_refresh_hours`` (checked at most every ``RFM_CHECK_SECONDS`` per container). New
        breakpoints are saved and a backfill re-evaluates every profile against them."""
        plan = self.plan(tenant)
        if not plan.uses_rfm:
            return []
        checked = self._rfm_checked.get(tenant)
        if checked is not None and time.monotonic() - checked < RFM_CHECK_SECONDS:
            return []
        self._rfm_checked[tenant] = time.monotonic()
        models = plan.models
        computed_at = models.rfm.computed_at
        if computed_at is not None and now - epoch(computed_at) < models.rfm_refresh_hours * 3600:
            return []
        stamp = iso_of(now)
        fresh = rfm_from_histograms(self.rfm_histogram(tenant), now, stamp)
        if fresh is None:
            return []  # too few buyers yet: keep the breakpoints
        old = models.rfm
        changed = (fresh.recency_days, fresh.frequency, fresh.monetary) != (
            old.recency_days,
            old.frequency,
            old.monetary,
        )
        self.store.put_models(tenant, models.model_copy(update={"rfm": fresh}).model_dump(mode="json"))
        self.invalidate(tenant)
        if not changed:
            return []
        self.store.bump_generation(tenant)
        from huiliu.segments.admin import request_backfill

        return [request_backfill(self.store, tenant, [f"rfm@{stamp}"], stamp)]


def _stamp(state: ProfileState, out: Sequence[BusEvent], now: float) -> None:
    """When each membership began (listed and exported with the members), from its transitions."""
    for e in out:
        if isinstance(e, SegmentEntered):
            state.since[e.segment_id] = [int(now), 1] if e.backfill else int(now)
        elif isinstance(e, SegmentExited):
            state.since.pop(e.segment_id, None)
    for sid in [s for s in state.since if s not in state.members]:
        del state.since[sid]


class _TickCause(BusEvent):
    """The cause of a time-driven transition (ids derive from the profile and the due moment)."""


def snapshot_of(state: ProfileState) -> ProfileSnapshot:
    """The kept projection as a ProfileSnapshot (for why/preview on stored state)."""
    snap = state.snapshot
    return ProfileSnapshot(
        profile_id=state.profile_id,
        version=state.version,
        traits=snap.get("traits") or {},
        tags=snap.get("tags") or [],
        consent={k: {"granted": v.get("granted", False)} for k, v in (snap.get("consent") or {}).items()},
        computed=snap.get("computed") or {},
    )
