"""Admin operations on profiles: lookup, 360 view, unmerge, erase (PIPL/GDPR), export.

Pure orchestration over :class:`IdentityRepository`; returns the out-events for the caller to
publish. Domain errors (NotFound, Conflict, BadRequest) map to HTTP in the admin app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.clock import Clock, default_clock
from huiliu.contracts import (
    ArchiveEraseRequested,
    ChangeSet,
    IdentifierRef,
    ProfileChanged,
    ProfileErased,
    ProfileSnapshot,
    ProfileUnmerged,
    derive_event_id,
)
from huiliu.errors import BadRequest, Conflict, NotFound
from huiliu.identifiers import InvalidIdentifier, is_valid_type
from huiliu.identity.profile import (
    CONSENT_KEY,
    ORDER_EVENTS,
    REFUND_EVENT,
    TAGS_KEY,
    Profile,
    iso,
    merge_computed,
)
from huiliu.identity.repository import (
    MARKER_SK,
    IdentityRepository,
    WriteSet,
    marker_pk,
    order_key,
    valid_cursor,
)
from huiliu.identity.rules import IdentityRules, TraitStrategy
from huiliu.identity.service import profile_summary
from huiliu.models import Identifier
from huiliu.tenants import TenantSettings

MAX_CHAIN = 16
TIMELINE_FIELDS = (
    "message_id",
    "profile_id",
    "type",
    "event",
    "timestamp",
    "received_at",
    "source",
    "identifiers",
    "traits",
    "properties",
    "context",
    "correlation_id",
)

# Refs per archive.erase_requested event (the contract bounds it; an entry stays far below 256 KB).
ARCHIVE_REFS_PER_EVENT = 500


@dataclass
class AdminResult:
    body: dict[str, Any]
    events: list[OutgoingEvent] = field(default_factory=list)


def _sk_time(sk: str) -> datetime:
    """The event time of a timeline sort key ``TL#{iso time}#{message id}``."""
    try:
        return datetime.fromisoformat(sk.split("#", 2)[1])
    except (IndexError, ValueError):
        return datetime.min.replace(tzinfo=UTC)  # unknown: never lets a profile be skipped


def _timeline_entry(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in TIMELINE_FIELDS if k in item} | {"cursor": item["sk"]}


def _merge_entry(item: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "merge_id",
        "survivor_id",
        "absorbed_id",
        "message_id",
        "linking_identifiers",
        "merged_at",
        "status",
    )
    return {k: item.get(k) for k in keys} | ({"undone_at": item["undone_at"]} if "undone_at" in item else {})


class ProfileAdmin:
    def __init__(
        self,
        repo: IdentityRepository,
        *,
        settings_for: Callable[[str], TenantSettings] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.repo = repo
        self.settings_for = settings_for or (lambda tenant: TenantSettings(tenant_id=tenant))
        self.clock = clock or default_clock()

    def _rules(self, tenant: str) -> IdentityRules:
        s = self.settings_for(tenant)
        return IdentityRules.from_settings(s.identity_rules, s.blocked_values, s.default_region)

    # -- finding people ---------------------------------------------------------------------------
    def identifier(self, tenant: str, kind: str, value: str) -> Identifier:
        if not is_valid_type(kind):
            raise BadRequest(f"unknown identifier type {kind!r}")
        from huiliu.identifiers import normalize

        try:
            return Identifier(type=kind, value=normalize(kind, value, self._rules(tenant).default_region))
        except InvalidIdentifier as exc:
            raise BadRequest(str(exc)) from exc

    def lookup(self, tenant: str, ident: Identifier) -> str:
        owner = self.repo.claim_owner(tenant, ident)
        if owner is None:
            raise NotFound(f"no profile holds {ident.type} {ident.value}")
        return self.live(tenant, owner).profile_id

    def live(self, tenant: str, profile_id: str) -> Profile:
        """The live profile for an id, following ``merged_into`` from a tombstone."""
        for _ in range(MAX_CHAIN):
            profile = self.repo.get_profile(tenant, profile_id)
            if profile is None:
                raise NotFound(f"no profile {profile_id}")
            if not profile.merged_into:
                return profile
            profile_id = profile.merged_into
        raise Conflict(f"merge chain too long at {profile_id}")

    # -- 360 view -------------------------------------------------------------------------------------
    def view(
        self, tenant: str, profile_id: str, *, cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        limit = max(1, min(limit, 200))
        if cursor is not None and not valid_cursor(cursor):
            raise BadRequest("cursor must be a next_cursor from an earlier page", reason="bad_cursor")
        profile = self.live(tenant, profile_id)
        rows = self.repo.timeline(tenant, profile.profile_id, before=cursor, limit=limit + 1)
        # The absorbed profiles and the merge records (``merge_log`` names them) in one
        # BatchGetItem: an absorbed profile's newest event time (last_seen) says whether its
        # timeline can reach this page at all. After a merge new events go to the survivor, so a
        # page is usually the survivor's alone: 3 calls (profile, timeline, absorbed profiles and
        # merge records) whatever the number of merges and events; none for the merges of a
        # profile that never absorbed anyone. A profile whose merges are not listed (written
        # before ``merge_log``) queries its merge records as before.
        others: dict[str, Profile] = {}
        records: list[dict[str, Any]] | None = None
        if profile.merge_log is not None and (profile.absorbed or profile.merge_log):
            others, records = self.repo.load_view_parts(tenant, profile.absorbed, profile.merge_log)
        elif profile.absorbed:
            others = self.repo.load_profiles(tenant, profile.absorbed, consistent=False)

        def newest(pid: str) -> datetime | None:
            member = others.get(pid)
            seen = (member.computed if member else {}).get("last_seen")
            try:
                when = datetime.fromisoformat(str(seen)) if seen else None
            except ValueError:
                return None
            return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)

        order = sorted(
            profile.absorbed, key=lambda pid: newest(pid) or datetime.max.replace(tzinfo=UTC), reverse=True
        )
        for pid in order:
            rows.sort(key=lambda i: i["sk"], reverse=True)
            seen = newest(pid)
            if len(rows) > limit and seen is not None and seen < _sk_time(rows[limit - 1]["sk"]):
                continue  # everything this profile holds is older than the page
            rows += self.repo.timeline(tenant, pid, before=cursor, limit=limit + 1)
        rows.sort(key=lambda i: i["sk"], reverse=True)
        page, more = rows[:limit], len(rows) > limit
        if records is not None:
            merges = [_merge_entry(m) for m in records]
        elif profile.merge_log == []:
            merges = []  # it never absorbed anyone: no record lives under it
        else:
            merges = [_merge_entry(m) for m in self.repo.merge_records(tenant, profile.profile_id)]
            for pid in profile.absorbed:
                member = others.get(pid)
                if member is None or member.merge_count > 0:  # only those that absorbed others hold records
                    merges += [_merge_entry(m) for m in self.repo.merge_records(tenant, pid)]
        merges.sort(key=lambda m: (m["merged_at"] or "", m["merge_id"] or ""), reverse=True)
        return {
            "profile_id": profile.profile_id,
            "requested_id": profile_id,
            "profile": profile.to_dict(),
            "identifiers": [{"type": i.type, "value": i.value} for i in profile.identifiers],
            "absorbed_ids": profile.absorbed,
            "merges": merges,
            "timeline": [_timeline_entry(i) for i in page],
            "next_cursor": page[-1]["sk"] if more and page else None,
        }

    # -- unmerge -----------------------------------------------------------------------------------
    def unmerge(
        self, tenant: str, profile_id: str, *, merge_id: str | None = None, absorbed_id: str | None = None
    ) -> AdminResult:
        if not merge_id and not absorbed_id:
            raise BadRequest("give merge_id or absorbed_id")
        survivor = self.repo.get_profile(tenant, profile_id)
        if survivor is None:
            raise NotFound(f"no profile {profile_id}")
        record = next(
            (
                r
                for r in self.repo.merge_records(tenant, profile_id)
                if r.get("status") == "active"
                and (r["merge_id"] == merge_id if merge_id else r["absorbed_id"] == absorbed_id)
            ),
            None,
        )
        if record is None:
            raise NotFound("no active merge like that on this profile")
        if survivor.merged_into:
            raise Conflict(f"{profile_id} was itself merged into {survivor.merged_into}; unmerge that first")
        current = self.repo.get_profile(tenant, record["absorbed_id"])
        if current is None:
            raise NotFound(f"absorbed profile {record['absorbed_id']} no longer exists")
        now = iso(self.clock.now())
        rules = self._rules(tenant)
        restored = Profile.from_dict(record["absorbed_before"])
        before = Profile.from_dict(record["survivor_before"])
        restored.merged_into = None
        restored.version = current.version + 1
        restored.updated_at = now
        after = _split(
            survivor, restored, before, rules, lambda: list(self.repo.timeline_all(tenant, profile_id))
        )
        # Keep them apart: an event linking the two again does not merge them (reason unmerged).
        after.keep_apart = sorted({*after.keep_apart, restored.profile_id})
        restored.keep_apart = sorted({*restored.keep_apart, profile_id})
        after.version = survivor.version + 1
        after.updated_at = now
        # Events either side applied before now may sit on the other one's ring: from now on both
        # check the processed marker for anything received earlier (service._known).
        restored.recent_since = after.recent_since = now
        owners = self.repo.load(tenant, identifiers=restored.identifiers).claims
        writes = WriteSet(
            profiles=[(after, survivor.version), (restored, current.version)],
            claims=[
                (i, restored.profile_id, profile_id)
                for i in restored.identifiers
                if owners.get(i) == profile_id
            ],
        )
        record = dict(record, status="undone", undone_at=now)
        writes.merge_updates.append((record["pk"], record["sk"], record))
        self.repo.commit(tenant, writes)
        base: dict[str, Any] = {
            "tenant_id": tenant,
            "correlation_id": record.get("correlation_id"),
            "occurred_at": now,
        }
        cause = f"{tenant}#unmerge#{record['merge_id']}"
        events = [
            ProfileUnmerged(
                **base,
                event_id=derive_event_id(cause, ProfileUnmerged.DETAIL_TYPE),
                profile_id=profile_id,
                version=after.version,
                restored_id=restored.profile_id,
                merge_id=record["merge_id"],
                identifiers_returned=[
                    IdentifierRef(type=i.type, value=i.value) for i in restored.identifiers
                ],
            ).outgoing(),
            *(
                ProfileChanged(
                    **base,
                    event_id=derive_event_id(cause, ProfileChanged.DETAIL_TYPE, p.profile_id),
                    profile_id=p.profile_id,
                    version=p.version,
                    changed=ChangeSet(unmerged=record["merge_id"]),
                    profile=ProfileSnapshot.model_validate(profile_summary(p)),
                ).outgoing()
                for p in (after, restored)
            ),
        ]
        return AdminResult(
            {"profile_id": profile_id, "restored_id": restored.profile_id, "merge_id": record["merge_id"]},
            events,
        )

    # -- erase and export ---------------------------------------------------------------------------
    def _members(self, tenant: str, ident: Identifier | None, profile_id: str | None) -> Profile:
        if ident is not None:
            profile_id = self.lookup(tenant, ident)
        assert profile_id is not None
        return self.live(tenant, profile_id)

    def erase(self, tenant: str, ident: Identifier) -> AdminResult:
        """Delete the person found by ``ident``: profiles, claims, timeline, markers; keep hashes."""
        live = self._members(tenant, ident, None)
        ids = [live.profile_id, *live.absorbed]
        profiles = self.repo.load_profiles(tenant, ids)
        identifiers = list(dict.fromkeys([ident, *(i for p in profiles.values() for i in p.identifiers)]))
        extra: list[tuple[str, str]] = []
        raw_refs: list[str] = []  # the person's archived raw requests (timeline items name them)
        for pid in ids:
            for item in self.repo.timeline_all(tenant, pid):
                if item.get("raw_ref"):
                    raw_refs.append(str(item["raw_ref"]))
                connector = (item.get("source") or {}).get("connector")
                if connector:
                    extra.append((marker_pk(tenant, connector, item["message_id"]), MARKER_SK))
                order_id = (item.get("properties") or {}).get("order_id")
                if order_id is not None and item.get("event") in (*ORDER_EVENTS, REFUND_EVENT):
                    extra.append(order_key(tenant, str(order_id), "COUNTED"))
                    extra.append(order_key(tenant, str(order_id), "REFUNDED"))
        # Merge records on other profiles that absorbed one of these (undone merges): deleted.
        # The other merges of those survivors may still hold the person's identifiers in their
        # snapshots: scrubbed. (Processed markers hold no identifier values, see service.)
        gone = set(ids)
        survivors: set[str] = set()
        for pid in ids:
            for record in self.repo.merges_of(tenant, pid):
                if record.get("survivor_id") not in gone:
                    extra.append((record["pk"], record["sk"]))
                    survivors.add(record["survivor_id"])
        dropped = set(extra)
        rewrites = []
        erased = set(identifiers)
        for sid in sorted(survivors):
            # events the other profile received while the person was merged into it (the linking
            # event among them) stay on its timeline, but not the person's identifiers
            for item in self.repo.timeline_all(tenant, sid):
                rows = item.get("identifiers") or []
                kept = [r for r in rows if Identifier(type=r["type"], value=r["value"]) not in erased]
                if len(kept) != len(rows):
                    rewrites.append(dict(item, identifiers=kept))
                    if item.get("raw_ref"):  # the request carried the person's identifiers
                        raw_refs.append(str(item["raw_ref"]))
            for record in self.repo.merge_records(tenant, sid):
                if (record["pk"], record["sk"]) not in dropped:
                    scrubbed = _scrub_merge(record, erased, gone)
                    if scrubbed != record:
                        rewrites.append(scrubbed)
        now = iso(self.clock.now())
        deleted = self.repo.erase(
            tenant,
            profile_ids=ids,
            identifiers=identifiers,
            extra_keys=extra,
            erased_at=now,
            rewrites=rewrites,
        )
        event = ProfileErased(
            event_id=derive_event_id(tenant, "erase", live.profile_id, now),
            tenant_id=tenant,
            occurred_at=now,
            profile_id=live.profile_id,
            version=live.version + 1,
            profile_ids=ids,
            identifier_count=len(identifiers),
        ).outgoing()
        refs = sorted({r for r in raw_refs if r.startswith("raw/")})
        archive = [
            ArchiveEraseRequested(
                event_id=derive_event_id(tenant, "erase-archive", live.profile_id, now, n),
                tenant_id=tenant,
                occurred_at=now,
                raw_refs=refs[n : n + ARCHIVE_REFS_PER_EVENT],
            ).outgoing()
            for n in range(0, len(refs), ARCHIVE_REFS_PER_EVENT)
        ]
        body = {
            "profile_id": live.profile_id,
            "profile_ids": ids,
            "identifiers": len(identifiers),
            "items": deleted,
            "archived_requests": len(refs),
        }
        return AdminResult(body, [event, *archive])

    def export(self, tenant: str, profile_id: str) -> dict[str, Any]:
        """Everything held about the person, as one JSON document."""
        live = self.live(tenant, profile_id)
        ids = [live.profile_id, *live.absorbed]
        absorbed = self.repo.load_profiles(tenant, live.absorbed)
        timeline: list[dict[str, Any]] = []
        merges: list[dict[str, Any]] = []
        for pid in ids:
            timeline += [_timeline_entry(i) for i in self.repo.timeline_all(tenant, pid)]
            merges += [_merge_entry(m) for m in self.repo.merge_records(tenant, pid)]
        timeline.sort(key=lambda i: i["cursor"])
        return {
            "tenant_id": tenant,
            "profile_id": live.profile_id,
            "exported_at": iso(self.clock.now()),
            "profile": live.to_dict(),
            "absorbed_profiles": [p.to_dict() for p in absorbed.values()],
            "merges": merges,
            "timeline": timeline,
        }


def _scrub_merge(
    record: dict[str, Any], identifiers: set[Identifier], profile_ids: set[str]
) -> dict[str, Any]:
    """A merge record without the erased identifiers and profile ids in its snapshots."""

    def idents(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if Identifier(type=r["type"], value=r["value"]) not in identifiers]

    out = dict(record)
    out["linking_identifiers"] = idents(record.get("linking_identifiers") or [])
    for key in ("survivor_before", "absorbed_before"):
        snapshot = record.get(key)
        if isinstance(snapshot, dict):
            out[key] = dict(
                snapshot,
                identifiers=idents(snapshot.get("identifiers") or []),
                absorbed=[p for p in snapshot.get("absorbed") or [] if p not in profile_ids],
                keep_apart=[p for p in snapshot.get("keep_apart") or [] if p not in profile_ids],
            )
            if not out[key]["keep_apart"]:
                out[key].pop("keep_apart")
    return out


def _stamp(item: dict[str, Any]) -> list[str]:
    return [iso(datetime.fromisoformat(str(item["timestamp"]))), str(item.get("message_id", ""))]


def _own_value(
    name: str, before: Profile, own_events: list[dict[str, Any]], rules: IdentityRules
) -> tuple[Any, list[str]] | None:
    """A trait as the survivor alone would hold it: its value before the merge plus its own
    events (its timeline partition: events it received itself, before and after the merge)."""
    probe = Profile(profile_id=before.profile_id, tenant_id=before.tenant_id, created_at=before.created_at)
    strategy = rules.strategy(name)
    if name in before.traits:
        probe.traits[name] = before.traits[name]
        probe.trait_meta[name] = list(before.trait_meta.get(name, ["", ""]))
    for item in own_events:
        traits = item.get("traits") or {}
        if name in traits and name not in (CONSENT_KEY, TAGS_KEY) and item.get("timestamp"):
            probe.set_trait(name, traits[name], _stamp(item), strategy)
    if name not in probe.traits:
        return None
    return probe.traits[name], probe.trait_meta.get(name, ["", ""])


def _split(
    survivor: Profile,
    restored: Profile,
    before: Profile,
    rules: IdentityRules,
    own_timeline: Callable[[], list[dict[str, Any]]] = list,
) -> Profile:
    """The survivor without what the restored profile brought in at the merge."""
    after = survivor.copy()
    gone = set(restored.identifiers)
    after.identifiers = [i for i in after.identifiers if i not in gone]
    returning = {restored.profile_id, *restored.absorbed}
    after.absorbed = [p for p in after.absorbed if p not in returning]
    after.merge_count = max(0, after.merge_count - 1 - restored.merge_count)
    # the restored profile takes its own merge records back out of the survivor's view (the undone
    # record stays under the survivor, and in its view)
    if after.merge_log is not None and restored.merge_log is not None:
        theirs = set(restored.merge_log)
        after.merge_log = [e for e in after.merge_log if e not in theirs]
    else:
        after.merge_log = None
    own_events: list[dict[str, Any]] | None = None
    for name, value in restored.traits.items():
        strategy = rules.strategy(name)
        if strategy is TraitStrategy.SUM:
            if isinstance(after.traits.get(name), int | float) and isinstance(value, int | float):
                after.traits[name] = after.traits[name] - value
        elif strategy is TraitStrategy.UNION:
            brought_values = {repr(v) for v in value or []} - {repr(v) for v in before.traits.get(name) or []}
            after.traits[name] = [v for v in after.traits.get(name) or [] if repr(v) not in brought_values]
        elif after.trait_meta.get(name) == restored.trait_meta.get(name):
            # The value came from the restored profile: fall back to the survivor's own value
            # (before the merge, plus what its own events said since), never to nothing if it
            # received one itself.
            if own_events is None:
                own_events = own_timeline()
            own = _own_value(name, before, own_events, rules)
            if own is None:
                after.traits.pop(name, None)
                after.trait_meta.pop(name, None)
            else:
                after.traits[name], after.trait_meta[name] = own
    after.tags = sorted(set(after.tags) - (set(restored.tags) - set(before.tags)))
    for channel, entry in restored.consent.items():
        if after.consent.get(channel) == entry:
            if channel in before.consent:
                after.consent[channel] = before.consent[channel]
            else:
                after.consent.pop(channel)
    computed = merge_computed(after.computed, restored.computed, sign=-1)
    for key in ("first_seen", "last_seen", "first_order_at", "last_order_at"):
        if key in restored.computed and computed.get(key) == restored.computed[key]:
            if key in before.computed:
                computed[key] = before.computed[key]
            else:
                computed.pop(key, None)
    brought = restored.computed
    if "currency" in brought and computed.get("currency_at") == brought.get("currency_at"):
        for key in ("currency", "currency_at"):
            if key in before.computed:
                computed[key] = before.computed[key]
            else:
                computed.pop(key, None)
    brought_products = set(restored.computed.get("products_bought", [])) - set(
        before.computed.get("products_bought", [])
    )
    if "products_bought" in computed:
        computed["products_bought"] = [p for p in computed["products_bought"] if p not in brought_products]
    after.computed = computed
    return after
