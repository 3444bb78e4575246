"""Identity service: one canonical event in -> claims, profile, timeline, out-events.

A known person (warm cache, nothing to attach): one eventually consistent read of the profile, a
version-conditioned put of it, a put of the timeline item (``IdentityService._known``). Otherwise:
1. one BatchGetItem for the event's claims, the erased-identifier hashes of every identifier,
   candidate profiles (a warm cache or the deterministic id of each identifier) and order markers;
2. one TransactWriteItems for the profile(s) (conditional on ``version``), new or moved claims
   (conditional on their previous owner), the timeline item (conditional on absence: it is also
   the processed marker, with the out-events) and the order marker.
Whether an event was applied already: the applied-event ring of the profiles it resolves to, and
for an event older than a ring, its timeline item under the profiles it can have landed on.
A lost race raises ConditionFailed and the whole attempt is retried from a fresh read (bounded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.clock import Clock, default_clock
from huiliu.contracts import (
    ChangeSet,
    IdentifierRef,
    IdentityConflict,
    ProfileChanged,
    ProfileMerged,
    ProfileSnapshot,
    TriggerEvent,
    derive_event_id,
)
from huiliu.errors import ConditionFailed
from huiliu.identity.profile import (
    ORDER_EVENTS,
    REFUND_EVENT,
    Profile,
    apply_event,
    iso,
    merge_profiles,
    order_facts,
)
from huiliu.identity.repository import (
    IdentityRepository,
    Snapshot,
    WriteSet,
    merge_of_pk,
    profile_pk,
    timeline_sk,
)
from huiliu.identity.resolution import resolve
from huiliu.identity.rules import IdentityRules
from huiliu.models import CanonicalEvent, Identifier
from huiliu.tenants import TenantSettings

SOURCE = "huiliu.identity"
MAX_ATTEMPTS = 10
CACHE_SIZE = 100_000
MAX_TOMBSTONE_HOPS = 8


class Contention(Exception):
    """Conditional writes kept failing: the record is retried by SQS."""


@dataclass
class Outcome:
    status: str  # processed | duplicate | skipped
    profile_id: str | None = None
    events: list[OutgoingEvent] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    attempts: int = 1


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * (2 ** min(attempt, 6))))  # jitter, not crypto


def _base(tenant: str, source: CanonicalEvent, now: str, kind: str, index: int) -> dict[str, Any]:
    """Fields every out-event of one canonical event shares; ``event_id`` is derived from the
    event's dedupe key, so reprocessing the same event republishes the same ids."""
    return {
        "event_id": derive_event_id(source.dedupe_key, kind, index),
        "tenant_id": tenant,
        "correlation_id": source.correlation_id,
        "occurred_at": now,
    }


def event_summary(event: CanonicalEvent) -> TriggerEvent:
    return TriggerEvent(
        message_id=event.message_id,
        type=str(event.type),
        name=event.event,
        timestamp=event.timestamp.astimezone(UTC).isoformat(),
        source=event.source.connector,
        properties=event.properties,
    )


def profile_summary(profile: Profile) -> dict[str, Any]:
    """The snapshot ``profile.changed`` carries (:class:`huiliu.contracts.ProfileSnapshot`)."""
    return {
        "profile_id": profile.profile_id,
        "version": profile.version,
        "created_at": profile.created_at,
        "identifiers": [{"type": i.type, "value": i.value} for i in profile.identifiers],
        "traits": profile.traits,
        "tags": profile.tags,
        "consent": profile.consent,
        "computed": profile.computed,
    }


_IDENT_LISTS = ("linking_identifiers", "identifiers_returned")


def _ref(ident: Any, identifiers: list[Identifier]) -> dict[str, Any]:
    """{"$i": index into the event's identifiers} instead of an identifier's value."""
    try:
        return {"$i": identifiers.index(Identifier(type=ident["type"], value=ident["value"]))}
    except (KeyError, TypeError, ValueError):
        return {"$i": -1}  # not the event's own identifier: its value is never stored


def _deref(ref: Any, identifiers: list[Identifier]) -> dict[str, Any] | None:
    idx = int(ref.get("$i", -1)) if isinstance(ref, dict) else -1
    if 0 <= idx < len(identifiers):
        return {"type": identifiers[idx].type, "value": identifiers[idx].value}
    return None


def _map_identifiers(detail: dict[str, Any], fn: Callable[[Any], Any]) -> dict[str, Any]:
    out = dict(detail)
    if isinstance(out.get("identifier"), dict):
        out["identifier"] = fn(out["identifier"])
    for key in _IDENT_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [fn(i) for i in out[key]]
    changed = out.get("changed")
    if isinstance(changed, dict) and isinstance(changed.get("identifiers_added"), list):
        out["changed"] = dict(changed, identifiers_added=[fn(i) for i in changed["identifiers_added"]])
    return out


def _event_parts(event: CanonicalEvent | None) -> dict[str, Any]:
    """What an out-event's detail repeats from the canonical event (a redelivery brings it again)."""
    if event is None:
        return {}
    return {
        "event": event_summary(event).model_dump(mode="json"),
        "tenant_id": event.tenant_id,
        "correlation_id": event.correlation_id,
    }


def encode_events(
    events: list[OutgoingEvent],
    identifiers: list[Identifier] | None = None,
    source: CanonicalEvent | None = None,
) -> bytes:
    """The out-events for a processed marker, without identifier values or profile summaries.

    The profile summary is left out (a redelivery fills in the live profile's) and identifiers
    are stored as indexes into the event's own cleaned identifiers, which the redelivered event
    brings again; so are the parts copied from the event itself (its summary with the properties,
    tenant and correlation id: ``source``). What stays (changed traits, times, ids) belongs to the
    profile the event landed on, whose erasure deletes the marker (its timeline item).
    """
    ids = identifiers or []
    parts = _event_parts(source)
    rows = []
    for e in events:
        detail = {k: v for k, v in e.detail.items() if k != "profile"}
        elided = [k for k, v in parts.items() if k in detail and detail[k] == v]
        for k in elided:
            del detail[k]
        mapped = _map_identifiers(detail, lambda i: _ref(i, ids))
        rows.append([e.detail_type, mapped, "profile" in e.detail, *([elided] if elided else [])])
    raw = json.dumps(rows, default=str, separators=(",", ":"))
    return zlib.compress(raw.encode(), 1)


def decode_events(
    blob: Any,
    identifiers: list[Identifier] | None = None,
    profile: Profile | None = None,
    source: CanonicalEvent | None = None,
) -> list[OutgoingEvent]:
    if not blob:
        return []
    ids = identifiers or []
    parts = _event_parts(source)
    out = []
    for row in json.loads(zlib.decompress(bytes(blob))):
        kind, detail = row[0], _map_identifiers(row[1], lambda r: _deref(r, ids))
        if len(row) > 2 and row[2]:
            detail["profile"] = profile_summary(profile) if profile is not None else None
            if profile is not None:
                detail["version"] = profile.version  # the live snapshot's version goes with it
        for k in row[3] if len(row) > 3 else []:
            detail[k] = parts.get(k)
        out.append(OutgoingEvent(SOURCE, kind, detail))
    return out


def applied_key(event: CanonicalEvent) -> str:
    """The short key a profile's applied-event ring keeps for an event (48 bits of its dedupe key)."""
    digest = hashlib.sha256(f"{event.source.connector}#{event.message_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode()


class TombstoneChainTooLong(RuntimeError):
    """A claim leads through more merged-away profiles than MAX_TOMBSTONE_HOPS (corrupt data)."""


class IdentityService:
    def __init__(
        self,
        repo: IdentityRepository,
        *,
        settings_for: Callable[[str], TenantSettings] | None = None,
        clock: Clock | None = None,
        salt: str = "",
        retention_days: int = 730,
        max_attempts: int = MAX_ATTEMPTS,
        backoff: Callable[[int], None] = _backoff,
    ) -> None:
        self.repo = repo
        self.settings_for = settings_for or (lambda tenant: TenantSettings(tenant_id=tenant))
        self.clock = clock or default_clock()
        self.salt = salt
        self.retention_days = retention_days
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._cache: OrderedDict[tuple[str, Identifier], str] = OrderedDict()
        self._rules: dict[str, tuple[TenantSettings, IdentityRules]] = {}

    # -- configuration ---------------------------------------------------------------------------
    def rules_for(self, tenant: str) -> tuple[TenantSettings, IdentityRules]:
        settings = self.settings_for(tenant)
        hit = self._rules.get(tenant)
        if hit and hit[0] is settings:
            return hit
        rules = IdentityRules.from_settings(
            settings.identity_rules, settings.blocked_values, settings.default_region
        )
        self._rules[tenant] = (settings, rules)
        return settings, rules

    def deterministic_id(self, tenant: str, ident: Identifier, erased_at: str | None = None) -> str:
        """``p`` + HMAC of the identifier; after an erasure also of its erase time, so a returning
        person gets a new id (racing first events still agree on it)."""
        message = f"profile#{tenant}#{ident.key}" + (f"#erased#{erased_at}" if erased_at else "")
        digest = hmac.new(self.salt.encode(), message.encode(), hashlib.sha256)
        return "p" + digest.hexdigest()[:24]

    def _remember(self, tenant: str, profile: Profile) -> None:
        for ident in profile.identifiers:
            self._cache[(tenant, ident)] = profile.profile_id
            self._cache.move_to_end((tenant, ident))
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def forget(self, tenant: str, identifiers: list[Identifier]) -> None:
        for ident in identifiers:
            self._cache.pop((tenant, ident), None)

    # -- the event path ----------------------------------------------------------------------------
    def process(self, event: CanonicalEvent) -> Outcome:
        settings, rules = self.rules_for(event.tenant_id)
        identifiers, _dropped = rules.clean(event.identifiers)
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = self._attempt(event, settings, rules, identifiers, attempt)
            except ConditionFailed:
                self.forget(event.tenant_id, identifiers)
                if attempt == self.max_attempts:
                    break
                self.backoff(attempt)
                continue
            outcome.attempts = attempt
            return outcome
        raise Contention(f"gave up after {self.max_attempts} attempts on {event.message_id}")

    def _attempt(
        self,
        event: CanonicalEvent,
        settings: TenantSettings,
        rules: IdentityRules,
        identifiers: list[Identifier],
        attempt: int = 1,
    ) -> Outcome:
        tenant = event.tenant_id
        repo = self.repo
        key = applied_key(event)
        facts = order_facts(event)
        order_keys: list[tuple[str, str]] = []
        if facts and facts.order_id:
            order_keys.append((facts.order_id, "COUNTED" if event.event in ORDER_EVENTS else "REFUNDED"))
        # Candidate profiles: the warm cache's guess, else each identifier's deterministic id. The
        # erased hashes of every identifier ride along in the same call, warm cache or not.
        cached = {i: self._cache.get((tenant, i)) for i in identifiers}
        candidates = [cached[i] or self.deterministic_id(tenant, i) for i in identifiers]
        if identifiers and not cached[identifiers[0]]:
            candidates.append(self.deterministic_id(tenant, identifiers[0]))
        # A known person (first attempt): one eventually consistent read of the profile the cache
        # names for the top identifier; see _known. An order is claimed for this event before the
        # profile write (no read): counted here if this event holds the claim.
        snap = self._known(event, identifiers, cached, key) if attempt == 1 else None
        if snap is not None and order_keys and snap.marker is None:
            order_id, kind = order_keys[0]
            pid = next(iter(snap.profiles))
            snap.orders[order_keys[0]] = repo.claim_order(tenant, order_id, kind, pid, key)
        if snap is None:
            snap = repo.load(
                tenant,
                identifiers=identifiers,
                profile_ids=candidates,
                orders=order_keys,
                # eventually consistent on the first attempt: every write below is conditioned on
                # what was read (claims on their owner, profiles on their version, markers on
                # absence), so a stale read only costs a retry, which reads consistently
                consistent=attempt > 1,
            )
        if snap.marker is not None:
            return self._duplicate(event, snap, identifiers)
        stamp = iso(event.timestamp)
        live = [i for i in identifiers if not (i in snap.erased and stamp <= snap.erased[i])]
        if not live:
            return Outcome("skipped")
        profiles = snap.profiles
        owners: dict[Identifier, str] = {}
        for ident in live:
            owner = snap.claims.get(ident)
            hops = 0
            while owner is not None:
                if owner not in profiles:
                    missing = {o for o in [owner, *snap.claims.values()] if o not in profiles}
                    profiles.update(repo.load_profiles(tenant, missing, consistent=attempt > 1))
                found = profiles.get(owner)
                if found is None:
                    owner = None  # claim of a profile that no longer exists: claim it afresh
                elif found.merged_into:
                    hops += 1
                    if hops > MAX_TOMBSTONE_HOPS:
                        raise TombstoneChainTooLong(
                            f"{ident.type} claim of {tenant} leads through more than "
                            f"{MAX_TOMBSTONE_HOPS} merged profiles (at {owner})"
                        )
                    owner = found.merged_into
                else:
                    break
            if owner is not None:
                owners[ident] = owner
        plan = resolve(live, owners, profiles, rules)
        now = iso(self.clock.now())
        survivor_id = plan.survivor(profiles)
        writes = WriteSet()
        if survivor_id is None and not plan.attach:
            return Outcome("skipped")  # every identifier conflicted (e.g. a tenant limit of 0)
        if survivor_id is None:
            top = plan.attach[0]
            if top in snap.erased:
                # a returning person after an erasure: never the erased profile's id again
                pid = self.deterministic_id(tenant, top, snap.erased[top])
            else:
                pid = self.deterministic_id(tenant, top)
                if pid not in snap.missing_profiles:
                    pid = "p" + uuid.uuid4().hex[:24]
            survivor = Profile(profile_id=pid, tenant_id=tenant, created_at=now)
            expected: int | None = None
        else:
            group = [profiles[p] for p in plan.group if p in profiles]
            received = iso(event.received_at)
            if any(p.applied(key) for p in group) or not all(p.ring_covers(received) for p in group):
                # applied already, or older than a ring: its timeline item says (a new profile
                # needs no look: the event would have left a claim leading to one)
                marker = self._find_applied(event, group, consistent=attempt > 1)
                if marker is not None:
                    snap.marker = marker
                    return self._duplicate(event, snap, identifiers)
                crashed = next((p for p in group if p.applied(key)), None)
                if crashed is not None:
                    # applied, but its timeline item was never written (a crash between the writes)
                    return self._rebuild(event, crashed, identifiers, settings)
            survivor = profiles[survivor_id].copy()
            expected = survivor.version
        out: list[OutgoingEvent] = []
        losers = sorted(
            (profiles[p] for p in plan.group if p != survivor.profile_id),
            key=lambda p: (p.created_at, p.profile_id),
        )
        for loser in losers:
            merge_id = uuid.uuid4().hex[:20]
            linking = plan.linked.get(loser.profile_id, [])
            writes.merges.append(
                {
                    "pk": profile_pk(tenant, survivor.profile_id),
                    "sk": f"MERGE#{merge_id}",
                    # erase finds every merge the absorbed profile took part in through gsi1
                    "gsi1pk": merge_of_pk(tenant, loser.profile_id),
                    "gsi1sk": f"{now}#{merge_id}",
                    "merge_id": merge_id,
                    "survivor_id": survivor.profile_id,
                    "absorbed_id": loser.profile_id,
                    "message_id": event.message_id,
                    "connector": event.source.connector,
                    "correlation_id": event.correlation_id,
                    "linking_identifiers": [{"type": i.type, "value": i.value} for i in linking],
                    "survivor_before": survivor.copy().to_item(),
                    "absorbed_before": loser.copy().to_item(),
                    "merged_at": now,
                    "status": "active",
                }
            )
            log = survivor.merge_log
            merge_profiles(survivor, loser, rules)
            if log is not None and loser.merge_log is not None:
                survivor.merge_log = [*log, f"{survivor.profile_id}:{merge_id}", *loser.merge_log]
            else:
                survivor.merge_log = None  # one side's records are not listed: the view queries
            tomb = loser.copy()
            tomb.merged_into = survivor.profile_id
            tomb.version = loser.version + 1
            tomb.updated_at = now
            writes.profiles.append((tomb, loser.version))
            writes.claims += [(i, survivor.profile_id, loser.profile_id) for i in loser.identifiers]
            out.append(
                ProfileMerged(
                    **_base(tenant, event, now, ProfileMerged.DETAIL_TYPE, len(out)),
                    profile_id=survivor.profile_id,
                    version=(expected or 0) + 1,
                    absorbed_id=loser.profile_id,
                    merge_id=merge_id,
                    linking_identifiers=[IdentifierRef(type=i.type, value=i.value) for i in linking],
                ).outgoing()
            )
        moved = {c[0] for c in writes.claims}
        settled = {survivor.profile_id, *(p.profile_id for p in losers)}
        for ident, owner in owners.items():
            stale = snap.claims.get(ident)
            if owner in plan.group and stale not in settled and ident not in moved:
                writes.claims.append((ident, survivor.profile_id, stale))  # repair a stale pointer
        for ident in plan.attach:
            writes.claims.append((ident, survivor.profile_id, snap.claims.get(ident)))
        added = survivor.add_identifiers(plan.attach)
        # an order not counted yet, or claimed by this very event (an earlier attempt or delivery)
        new_order = not order_keys or snap.orders.get(order_keys[0], key) == key
        changes = apply_event(
            survivor,
            event,
            rules,
            count_order=new_order and event.event in ORDER_EVENTS,
            count_refund=new_order and event.event == REFUND_EVENT,
        )
        changes.identifiers_added = added
        survivor.remember_applied(key, now)
        for ident in plan.attach:
            if ident in snap.erased:  # claimed again after an erasure: old events must still not count
                survivor.erased_ids[ident.key] = snap.erased[ident]
        survivor.version = (expected or 0) + 1
        survivor.updated_at = now
        writes.profiles.insert(0, (survivor, expected))
        if order_keys and order_keys[0] not in snap.orders:
            # claimed for this event before the commit (one plain conditional put instead of a
            # transactional one): a lost commit or a crash leaves the claim this event's own
            order_id, kind = order_keys[0]
            if repo.claim_order(tenant, order_id, kind, survivor.profile_id, key) != key:
                raise ConditionFailed(f"order {order_id} claimed meanwhile")  # re-read: not counted
        refused = {c.identifier for c in plan.conflicts}
        retention = settings.timeline_retention_days or self.retention_days
        ttl = int((self.clock.now() + timedelta(days=retention)).timestamp())
        writes.timeline = self._timeline_item(
            event, survivor.profile_id, [i for i in live if i not in refused], ttl
        )
        version = survivor.version
        for conflict in plan.conflicts:
            out.append(
                IdentityConflict(
                    **_base(tenant, event, now, IdentityConflict.DETAIL_TYPE, len(out)),
                    profile_id=survivor.profile_id,
                    version=version,
                    identifier=IdentifierRef(type=conflict.identifier.type, value=conflict.identifier.value),
                    reason=conflict.reason,
                    held_by=conflict.held_by,
                    message_id=event.message_id,
                ).outgoing()
            )
        out.insert(
            0,
            ProfileChanged(
                **_base(tenant, event, now, ProfileChanged.DETAIL_TYPE, 0),
                profile_id=survivor.profile_id,
                version=version,
                created=expected is None,
                changed=ChangeSet.model_validate(changes.to_dict()),
                merged_from=[p.profile_id for p in losers],
                event=event_summary(event),
                profile=ProfileSnapshot.model_validate(profile_summary(survivor)),
            ).outgoing(),
        )
        writes.timeline["out"] = encode_events(out, identifiers, event)  # the processed marker
        # With profile.changed its only out-event, the timeline item can follow the transaction (a
        # crash between is rebuilt from the ring, created included); a merge or conflict keeps it
        # in the transaction so their out-events are never lost.
        writes.timeline_after = len(out) == 1
        repo.commit(tenant, writes)
        self._remember(tenant, survivor)
        return Outcome("processed", survivor.profile_id, out, merged=[p.profile_id for p in losers])

    # -- the known-person path ------------------------------------------------------------------------
    def _known(
        self,
        event: CanonicalEvent,
        identifiers: list[Identifier],
        cached: dict[Identifier, str | None],
        key: str,
    ) -> Snapshot | None:
        """The snapshot of a known person from one eventually consistent read, or None.

        The profile the warm cache names for the top identifier is read alone (no guess, no read).
        When it is live and already holds every identifier of the event, it is what resolution
        would pick with nothing to attach, move or merge: a live profile lists exactly the
        identifiers whose claims lead to it, so the claims need no read, and ``erased_ids`` on the
        profile replaces the erased-hash reads. The processed marker is read only for an event
        received before the profile's ``recent_since`` (older than its applied-event ring); a key
        in the ring is a redelivery. A stale read costs nothing but a retry: the profile write is
        conditioned on the version read, and attempts after the first take the full, strongly
        consistent read.
        """
        pid = cached.get(identifiers[0]) if identifiers else None
        if pid is None:
            return None  # a cold cache or a new identifier: no guess worth a read of its own
        tenant = event.tenant_id
        profile = self.repo.load_profiles(tenant, [pid], consistent=False).get(pid)
        if profile is None or profile.merged_into or not set(identifiers) <= set(profile.identifiers):
            return None
        erased = {i: profile.erased_ids[i.key] for i in identifiers if i.key in profile.erased_ids}
        snap = Snapshot(claims=dict.fromkeys(identifiers, pid), profiles={pid: profile}, erased=erased)
        received = iso(event.received_at)
        if profile.applied(key) or not profile.ring_covers(received):
            snap.marker = self._find_applied(event, [profile], consistent=False)
            if snap.marker is None and profile.applied(key):
                return None  # applied without its timeline item: the full path rebuilds it
        return snap

    def _find_applied(
        self, event: CanonicalEvent, group: list[Profile], *, consistent: bool
    ) -> dict[str, Any] | None:
        """The timeline item (or old processed marker) of an event applied to one of the profiles
        it can have landed on: those it resolves to, what they absorbed (timeline items never
        move), and the profiles an admin unmerged from them (an event applied while merged stays
        with the survivor's timeline, its identifiers may lead to the restored one)."""
        related = [pid for p in group for pid in (p.profile_id, *p.absorbed, *p.keep_apart)]
        return self.repo.find_applied(
            event.tenant_id,
            connector=event.source.connector,
            message_id=event.message_id,
            sk=timeline_sk(event.timestamp.astimezone(UTC).isoformat(), event.message_id),
            profile_ids=related,
            consistent=consistent,
        )

    def _timeline_item(
        self, event: CanonicalEvent, profile_id: str, attached: list[Identifier], ttl: int
    ) -> dict[str, Any]:
        when = event.timestamp.astimezone(UTC).isoformat()
        return {
            "pk": profile_pk(event.tenant_id, profile_id),
            "sk": timeline_sk(when, event.message_id),
            "profile_id": profile_id,
            "message_id": event.message_id,
            "type": str(event.type),
            "event": event.event,
            "timestamp": when,
            "received_at": event.received_at.astimezone(UTC).isoformat(),
            "source": event.source.model_dump(exclude_none=True),
            # only what was attached: a conflicting identifier belongs to someone else
            "identifiers": [{"type": i.type, "value": i.value} for i in attached],
            "traits": event.traits,
            "properties": event.properties,
            "context": event.context,
            "correlation_id": event.correlation_id,
            # the archived raw request it came from: erase removes it from the archive too
            "raw_ref": event.raw_ref,
            "ttl": ttl,
        }

    def _rebuild(
        self, event: CanonicalEvent, profile: Profile, identifiers: list[Identifier], settings: TenantSettings
    ) -> Outcome:
        """An event the profile applied whose timeline item (its marker) was never written (the
        process stopped between the profile write and its): write it now and republish
        ``profile.changed`` with the same event id and the live snapshot (the diff is lost)."""
        tenant = event.tenant_id
        now = iso(self.clock.now())
        retention = settings.timeline_retention_days or self.retention_days
        ttl = int((self.clock.now() + timedelta(days=retention)).timestamp())
        changed = ProfileChanged(
            **_base(tenant, event, now, ProfileChanged.DETAIL_TYPE, 0),
            profile_id=profile.profile_id,
            version=profile.version,
            created=profile.version == 1,  # its first write was this event's: it created it
            changed=ChangeSet(),
            merged_from=[],
            event=event_summary(event),
            profile=ProfileSnapshot.model_validate(profile_summary(profile)),
        ).outgoing()
        held = [i for i in identifiers if i in set(profile.identifiers)]
        item = self._timeline_item(event, profile.profile_id, held, ttl)
        item["out"] = encode_events([changed], identifiers, event)
        self.repo.write_timeline(item)
        return Outcome("duplicate", profile.profile_id, [changed])

    def _duplicate(self, event: CanonicalEvent, snap: Snapshot, identifiers: list[Identifier]) -> Outcome:
        """A redelivered event: its stored out-events again, with the live profile's summary."""
        assert snap.marker is not None
        tenant = event.tenant_id
        profile_id = snap.marker.get("profile_id")
        profile = snap.profiles.get(profile_id) if profile_id else None
        hops = 0
        while profile_id and (profile is None or profile.merged_into) and hops <= MAX_TOMBSTONE_HOPS:
            if profile is not None:
                profile_id, hops = profile.merged_into, hops + 1
            profile = snap.profiles.get(profile_id) if profile_id else None
            if profile is None and profile_id:
                profile = self.repo.load_profiles(tenant, [profile_id]).get(profile_id)
                if profile is None:
                    break
        events = decode_events(snap.marker.get("out"), identifiers, profile, event)
        return Outcome("duplicate", snap.marker.get("profile_id"), events)
