"""Snapshot replay: re-emit a tenant's profiles as ``profile.changed`` (``replay=True``).

A stage that needs every existing profile (a new segment's backfill) puts a
:class:`~huiliu.contracts.ReplayRequested` on the bus. Identity answers one page per request: it
reads one page of profile ids from the per-tenant profile index (``gsi2``, keys only, sharded — no
table scan), loads those profiles in one BatchGetItem (eventually consistent: a replay is a
snapshot, and a profile that changes meanwhile emits its own newer ``profile.changed``), emits one
snapshot each, and asks for the next page itself with a cursor (``{shard}:{last profile id}``). So a
replay is resumable (a failed page is redelivered by SQS and re-emits the same event ids), never
holds one invocation for long, and ends with a :class:`~huiliu.contracts.ReplayCompleted`.

Cost per profile replayed: ~1/100 of a Query and ~1 read unit (per 4 KB of profile) of BatchGetItem,
one PutEvents entry, and the deliveries of ``profile.changed`` to its consumer queues.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.contracts import (
    ProfileChanged,
    ProfileSnapshot,
    ReplayCompleted,
    ReplayRequested,
    derive_event_id,
)
from huiliu.errors import BadRequest
from huiliu.identity.repository import PROFILE_SHARDS, IdentityRepository
from huiliu.identity.service import profile_summary


def parse_cursor(cursor: str | None) -> tuple[int, str | None]:
    if not cursor:
        return 0, None
    shard, _, after = cursor.partition(":")
    if not shard.isdigit() or not 0 <= int(shard) < PROFILE_SHARDS:
        raise BadRequest(f"bad replay cursor {cursor!r}")
    return int(shard), after or None


def replay_page(
    repo: IdentityRepository, request: ReplayRequested, now: datetime | None = None
) -> list[OutgoingEvent]:
    """The snapshots of one page and what comes next (the next request, or the completion)."""
    tenant = request.tenant_id
    occurred = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    shard, after = parse_cursor(request.cursor)
    ids: list[str] = []
    # Fill the page across shards (an empty or short shard moves on to the next).
    next_cursor: str | None = None
    while shard < PROFILE_SHARDS and len(ids) < request.page_size:
        found, last = repo.profile_ids_page(tenant, shard, after=after, limit=request.page_size - len(ids))
        ids += found
        if last is not None:
            next_cursor = f"{shard}:{last}"
            break
        shard, after = shard + 1, None
        next_cursor = f"{shard}:" if shard < PROFILE_SHARDS else None
    profiles = repo.load_profiles(tenant, ids, consistent=False) if ids else {}
    base: dict[str, Any] = {
        "tenant_id": tenant,
        "correlation_id": request.correlation_id,
        "occurred_at": occurred,
    }
    out: list[OutgoingEvent] = []
    for pid in ids:
        profile = profiles.get(pid)
        if profile is None or profile.merged_into:
            continue  # erased or merged away since the index page was read
        out.append(
            ProfileChanged(
                **base,
                event_id=derive_event_id(request.replay_id, pid, profile.version),
                replay=True,
                replay_id=request.replay_id,
                profile_id=pid,
                version=profile.version,
                profile=ProfileSnapshot.model_validate(profile_summary(profile)),
            ).outgoing()
        )
    page = request.page + 1
    emitted = request.emitted + len(out)
    if next_cursor is not None:
        out.append(
            ReplayRequested(
                **base,
                event_id=derive_event_id(request.replay_id, "page", next_cursor),
                replay_id=request.replay_id,
                requester=request.requester,
                cursor=next_cursor,
                page=page,
                page_size=request.page_size,
                emitted=emitted,
            ).outgoing(ReplayCompleted.SOURCE)
        )
    else:
        out.append(
            ReplayCompleted(
                **base,
                event_id=derive_event_id(request.replay_id, "completed"),
                replay_id=request.replay_id,
                requester=request.requester,
                pages=page,
                profiles=emitted,
            ).outgoing()
        )
    return out
