"""A tenant's compiled segments (the plan), the per-profile state, and one evaluation. Pure.

The segments stage keeps, per profile, one state item (see docs/segments.md):

- ``snapshot``: the part of identity's latest ProfileSnapshot that some segment reads (plus the
  order fields the lifecycle/RFM models use, tags, consent and identifier *types* — never values);
- ``log``: per tracked event name, the occurrences ``[posix seconds, {property: number}]`` of the
  last window any segment needs (at most ``MAX_LOG_PER_EVENT``), fed from the triggering event of
  each ``profile.changed`` — identity keeps per-name ``count`` and ``last_at`` only, which answer
  "ever", "never", all-time counts and "happened within P30D" exactly, but not windowed counts/sums;
- ``seen``: the profile versions whose triggering event is in the log (a redelivery or a late,
  stale snapshot never counts one twice);
- ``members`` {segment id: segment version} and ``due``: the earliest moment any segment's answer
  can change by time alone (every segment's ``next_change``), which goes to the sharded due index.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from huiliu.segments.builtin import DEFAULT_MODELS, TenantModels, to_epoch
from huiliu.segments.compiler import Compiled, EvalContext, compile_condition
from huiliu.segments.language import MAX_LOG_PER_EVENT, SegmentDefinition, check_definitions

MAX_SEEN = 64
# order fields the built-in models read: always kept, whatever the segments read
CORE_COMPUTED = ("order_count", "revenue_total", "net_revenue", "first_order_at", "last_order_at")


@dataclass(frozen=True)
class StoredSegment:
    definition: SegmentDefinition
    version: int
    created_at: str = ""
    updated_at: str = ""

    @property
    def id(self) -> str:
        return self.definition.id


@dataclass(frozen=True)
class SegmentPlan:
    id: str
    version: int
    compiled: Compiled


class TenantPlan:
    """Every segment of a tenant, compiled once, in dependency order, with its read index."""

    def __init__(
        self, segments: Iterable[StoredSegment], models: TenantModels = DEFAULT_MODELS, generation: int = 0
    ) -> None:
        stored = {s.id: s for s in segments}
        # bumped by every change of the tenant's definitions: a state written by a newer plan makes a
        # container with an older cached plan reload it
        self.generation = generation
        self.order = check_definitions({sid: s.definition for sid, s in stored.items()})
        self.models = models
        self.segments: dict[str, SegmentPlan] = {
            sid: SegmentPlan(sid, stored[sid].version, compile_condition(stored[sid].definition.condition))
            for sid in self.order
        }
        # when the breakpoints were computed is not part of what decides a membership
        decisive = models.model_dump_json(exclude={"rfm": {"computed_at", "profiles"}})
        digest = hashlib.sha256(decisive.encode())
        for sid in self.order:
            digest.update(f"{sid}:{stored[sid].version};".encode())
        self.revision = digest.hexdigest()[:16]
        self.by_read: dict[str, set[str]] = {}
        self.dependents: dict[str, set[str]] = {}
        for sid, plan in self.segments.items():
            for key in plan.compiled.reads:
                self.by_read.setdefault(key, set()).add(sid)
            for ref in plan.compiled.segment_refs:
                self.dependents.setdefault(ref, set()).add(sid)
        self.log_events: dict[str, frozenset[str]] = {}
        horizon, sinces = 0.0, []
        for plan in self.segments.values():
            for name, props in plan.compiled.log_events.items():
                self.log_events[name] = self.log_events.get(name, frozenset()) | props
            horizon = max(horizon, plan.compiled.log_horizon)
            if plan.compiled.log_since is not None:
                sinces.append(plan.compiled.log_since)
        self.log_horizon = horizon
        self.log_since = min(sinces) if sinces else None
        reads = set(self.by_read)
        self.keep_traits = {k.removeprefix("traits.") for k in reads if k.startswith("traits.")}
        self.keep_computed = {k.removeprefix("computed.") for k in reads if k.startswith("computed.")}
        self.keep_computed.update(CORE_COMPUTED)
        self.keep_event_names = {k.removeprefix("events.") for k in reads if k.startswith("events.")}
        # tenants with RFM segments have their breakpoints recomputed daily by the sweep
        self.uses_rfm = any(p.compiled.uses_rfm for p in self.segments.values())

    def touched(self, keys: Iterable[str]) -> set[str]:
        """Segments whose conditions read any of ``keys``, and every segment that uses them."""
        out: set[str] = set()
        for key in keys:
            out |= self.by_read.get(key, set())
        pending = list(out)
        while pending:
            for dependent in self.dependents.get(pending.pop(), ()):
                if dependent not in out:
                    out.add(dependent)
                    pending.append(dependent)
        return out

    def keeps(self, key: str) -> bool:
        """Whether a read key (``traits.city``, ``computed.order_count``, ``events.Order Completed``,
        ``tags``, ``consent.x``, ``identifiers.t``) is part of the kept projection (``project``)."""
        section, _, name = key.partition(".")
        if section == "traits":
            return name in self.keep_traits
        if section == "computed":
            return name in self.keep_computed
        if section == "events":
            return name in self.keep_event_names
        return section in ("tags", "consent", "identifiers")

    # -- projection --------------------------------------------------------------------------
    def project(self, profile: Any) -> dict[str, Any]:
        """The part of a ProfileSnapshot the segments read (what the state item keeps)."""
        get = profile.get if isinstance(profile, Mapping) else lambda k, d=None: getattr(profile, k, d)
        traits = get("traits") or {}
        computed = get("computed") or {}
        events = computed.get("events") or {}
        kept_computed = {k: computed[k] for k in sorted(self.keep_computed) if k in computed}
        kept_events = {n: dict(events[n]) for n in sorted(self.keep_event_names) if n in events}
        if kept_events:
            kept_computed["events"] = kept_events
        consent = {}
        for channel, entry in (get("consent") or {}).items():
            data = entry if isinstance(entry, Mapping) else entry.model_dump()
            consent[channel] = {"granted": bool(data.get("granted"))}
        identifiers = get("identifiers") or []
        types = sorted({i["type"] if isinstance(i, Mapping) else i.type for i in identifiers})
        return {
            "traits": {k: traits[k] for k in sorted(self.keep_traits) if k in traits},
            "computed": kept_computed,
            "tags": sorted(get("tags") or []),
            "consent": consent,
            "identifier_types": types,
        }

    def context(self, snapshot: Mapping[str, Any], log: Mapping[str, Any], now: float) -> EvalContext:
        return EvalContext(
            now=now,
            traits=snapshot.get("traits") or {},
            computed=snapshot.get("computed") or {},
            tags=snapshot.get("tags") or (),
            consent=snapshot.get("consent") or {},
            identifier_types=snapshot.get("identifier_types") or (),
            events=log,
            models=self.models,
        )


@dataclass
class ProfileState:
    tenant_id: str
    profile_id: str
    version: int = 0
    snapshot: dict[str, Any] = field(default_factory=dict)
    log: dict[str, list[list[Any]]] = field(default_factory=dict)
    seen: list[int] = field(default_factory=list)
    members: dict[str, int] = field(default_factory=dict)
    # when each membership began: segment -> posix seconds ([seconds, 1] when a backfill entered it)
    since: dict[str, Any] = field(default_factory=dict)
    due: float | None = None
    revision: str = ""
    generation: int = 0
    merged_into: str | None = None
    absorbed: list[str] = field(default_factory=list)  # absorbed profiles whose log was folded in
    last_event_id: str | None = None
    outbox: list[list[Any]] = field(default_factory=list)  # [["+"|"-", segment, version], ...]
    exists: bool = False  # loaded from the table (vs. new)

    def to_item(self) -> dict[str, Any]:
        """The stored attributes (the item's key names the tenant and the profile). Compact: a write
        costs a unit per started KB of the item, attribute names included."""
        return {
            "version": self.version,
            "snapshot": self.snapshot,
            "log": self.log,
            "seen": self.seen,
            "members": self.members,
            "since": self.since,
            "due": self.due,
            "revision": self.revision,
            "generation": self.generation,
            "merged_into": self.merged_into,
            "absorbed": self.absorbed,
            "last_event_id": self.last_event_id,
            "outbox": " ".join(f"{sign}{sid}:{version}" for sign, sid, version in self.outbox),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ProfileState:
        tenant, _, profile = str(item["pk"]).removeprefix("T#").rpartition("#P#")
        outbox = item.get("outbox") or ""
        return cls(
            tenant_id=tenant,
            profile_id=profile,
            version=int(item.get("version") or 0),
            snapshot=dict(item.get("snapshot") or {}),
            log={k: [list(o) for o in v] for k, v in (item.get("log") or {}).items()},
            seen=[int(v) for v in item.get("seen") or []],
            members={k: int(v) for k, v in (item.get("members") or {}).items()},
            since={
                k: [int(x) for x in v] if isinstance(v, list) else int(v)
                for k, v in (item.get("since") or {}).items()
            },
            due=float(item["due"]) if item.get("due") is not None else None,
            revision=str(item.get("revision") or ""),
            generation=int(item.get("generation") or 0),
            merged_into=item.get("merged_into"),
            absorbed=list(item.get("absorbed") or []),
            last_event_id=item.get("last_event_id"),
            outbox=[list(e) for e in outbox]  # a state written before the outbox was one string
            if isinstance(outbox, list)
            else [[e[0], e[1:].rpartition(":")[0], int(e.rpartition(":")[2])] for e in outbox.split()],
            exists=True,
        )

    def copy(self) -> ProfileState:
        copy = ProfileState.from_item({"pk": f"T#{self.tenant_id}#P#{self.profile_id}", **self.to_item()})
        copy.exists = self.exists
        return copy


# -- the occurrence log -------------------------------------------------------------------------
def _occurrence_key(occurrence: Sequence[Any]) -> tuple[Any, str]:
    """Time first; equal times by their properties, so the log never depends on arrival order."""
    props = occurrence[1] if len(occurrence) > 1 else {}
    return occurrence[0], repr(sorted(props.items()))


def log_occurrence(
    plan: TenantPlan,
    log: dict[str, list[list[Any]]],
    name: str | None,
    timestamp: Any,
    properties: Mapping[str, Any] | None,
    now: float,
) -> bool:
    """Add one triggering event to the log if a segment needs its name; True if the log changed."""
    if not name or name not in plan.log_events:
        return False
    at = to_epoch(
        timestamp if isinstance(timestamp, str) else getattr(timestamp, "isoformat", lambda: None)()
    )
    if at is None:
        return False
    props = {}
    for prop in sorted(plan.log_events[name]):
        value = (properties or {}).get(prop)
        if isinstance(value, int | float) and not isinstance(value, bool):
            props[prop] = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                props[prop] = float(value)
    entries = log.setdefault(name, [])
    entries.append([int(at), props] if props else [int(at)])
    entries.sort(key=_occurrence_key)
    prune_log(plan, log, now)
    return True


def prune_log(plan: TenantPlan, log: dict[str, list[list[Any]]], now: float) -> None:
    """Drop names no segment needs, occurrences older than every window, and the oldest beyond the cap."""
    floor = now - plan.log_horizon
    if plan.log_since is not None:
        floor = min(floor, plan.log_since)
    for name in list(log):
        if name not in plan.log_events:
            del log[name]
            continue
        kept = [o for o in log[name] if o[0] > floor][-MAX_LOG_PER_EVENT:]
        if kept:
            log[name] = kept
        else:
            del log[name]


def merge_logs(into: dict[str, list[list[Any]]], other: Mapping[str, Sequence[Sequence[Any]]]) -> None:
    for name, entries in other.items():
        merged = [*into.get(name, []), *(list(e) for e in entries)]
        merged.sort(key=_occurrence_key)
        into[name] = merged[-MAX_LOG_PER_EVENT:]


def remember_seen(state: ProfileState, version: int) -> None:
    state.seen = sorted({*state.seen, version})[-MAX_SEEN:]


# -- evaluation ---------------------------------------------------------------------------------
@dataclass
class Evaluation:
    entered: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    evaluated: int = 0


def projection_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """The read keys whose values differ between two kept snapshots (exact, whatever the versions
    in between: ``profile.changed``'s own ``changed`` block is relative to the previous version, which
    this stage may not have seen yet)."""
    keys: set[str] = set()
    for section, prefix in (("traits", "traits."), ("consent", "consent.")):
        a, b = old.get(section) or {}, new.get(section) or {}
        keys |= {prefix + k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    a, b = old.get("computed") or {}, new.get("computed") or {}
    keys |= {f"computed.{k}" for k in set(a) | set(b) if k != "events" and a.get(k) != b.get(k)}
    ea, eb = a.get("events") or {}, b.get("events") or {}
    keys |= {f"events.{n}" for n in set(ea) | set(eb) if ea.get(n) != eb.get(n)}
    if sorted(old.get("tags") or []) != sorted(new.get("tags") or []):
        keys.add("tags")
    ia, ib = set(old.get("identifier_types") or []), set(new.get("identifier_types") or [])
    keys |= {f"identifiers.{t}" for t in ia ^ ib}
    return keys


def change_keys(changed: Any) -> set[str]:
    """The read keys identity's change set names (``profile.changed``'s ``changed`` block)."""
    keys = {f"traits.{k}" for k in changed.traits} | {f"consent.{k}" for k in changed.consent}
    for key in changed.computed:
        keys.add(key if key.startswith("events.") else f"computed.{key}")
    if changed.tags_added or changed.tags_removed:
        keys.add("tags")
    keys |= {f"identifiers.{i.type}" for i in changed.identifiers_added}
    return keys


def changes_nothing_kept(plan: TenantPlan, ev: Any) -> bool:
    """True when a ``profile.changed`` provably leaves everything this stage keeps as it is, so it
    needs no read: identity's change set is exact and names only fields outside the kept projection,
    and its triggering event is not one the log keeps. Then the projection of version *v* equals
    that of *v - 1*, whatever version the state holds: an older state is brought up to date by the
    (non-skippable) event that did change the projection, a newer one would drop this as stale, and
    a due time that passed is the sweep's. A new profile, a merge, an unmerge, a replay, and a
    change set that is empty (a republish whose diff is lost) always read."""
    if ev.created or ev.replay or ev.merged_from or ev.changed.unmerged:
        return False
    keys = change_keys(ev.changed)
    if not keys or any(plan.keeps(k) for k in keys):
        return False
    return ev.event is None or (ev.event.name or ev.event.type) not in plan.log_events


def evaluate(plan: TenantPlan, state: ProfileState, now: float, only: set[str] | None) -> Evaluation:
    """Test ``only`` (None: every segment) on the state's snapshot and update the members; the due
    time is recomputed over every segment (cheap: no test, one closure each)."""
    result = Evaluation()
    ctx = plan.context(state.snapshot, state.log, now)
    ctx.segments = {sid for sid in state.members if sid in plan.segments}
    due: float | None = None
    for sid in plan.order:
        seg = plan.segments[sid]
        if only is None or sid in only:
            result.evaluated += 1
            held = seg.compiled.test(ctx)
            was = sid in state.members
            if held:
                ctx.segments.add(sid)
                if not was:
                    state.members[sid] = seg.version
                    result.entered.append(sid)
                elif state.members[sid] != seg.version:
                    state.members[sid] = seg.version
            else:
                ctx.segments.discard(sid)
                if was:
                    del state.members[sid]
                    result.exited.append(sid)
        moment = seg.compiled.next_change(ctx)
        if moment is not None and moment > now and (due is None or moment < due):
            due = moment
    # segments deleted since the state was written
    for sid in [s for s in state.members if s not in plan.segments]:
        del state.members[sid]
        result.exited.append(sid)
    state.due = due
    state.revision = plan.revision
    state.generation = plan.generation
    return result
