"""Segment definitions and audiences for the admin API and the CLI. No AWS calls here.

- ``apply``: validate a set of definitions (all of them, against the tenant's others: references,
  cycles) before writing any; save new versions in one transaction; start a backfill (identity's
  snapshot replay) for what changed. ``dry_run`` returns the diff and writes nothing.
- ``list``/``show``/``delete``/``count``/``members``/``export``: read the tenant index, which carries
  every profile's memberships (never a table scan); ``preview``: an unsaved definition over a sample
  of kept profile states; ``why``: which condition held or failed for one profile, with the values seen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from huiliu.clock import Clock, default_clock
from huiliu.contracts import ReplayRequested, derive_event_id
from huiliu.errors import BadRequest, ConditionFailed, Conflict, NotFound
from huiliu.segments.builtin import TenantModels
from huiliu.segments.compiler import compile_condition, explain
from huiliu.segments.engine import StoredSegment, TenantPlan
from huiliu.segments.language import (
    SegmentDefinition,
    SegmentLanguageError,
    check_definitions,
    parse_definition,
    references,
)
from huiliu.segments.repository import SegmentsStore, iso_of

MAX_PREVIEW_SAMPLE = 1000


@dataclass
class ApplyResult:
    body: dict[str, Any]
    events: list[Any] = field(default_factory=list)


def request_backfill(store: SegmentsStore, tenant: str, changed: list[str], now: str) -> ReplayRequested:
    """Record a backfill's progress item and the replay request that starts it."""
    replay_id = "bf-" + derive_event_id(tenant, *changed)[1:17]
    store.put_progress(
        tenant,
        replay_id,
        {"replay_id": replay_id, "segments": changed, "status": "running", "started_at": now},
    )
    return ReplayRequested(
        event_id=derive_event_id(replay_id, "request", 0),
        tenant_id=tenant,
        occurred_at=now,
        replay_id=replay_id,
        requester="segments:" + ",".join(changed),
    )


def _invalid(exc: SegmentLanguageError) -> BadRequest:
    error = BadRequest("invalid segment definition: " + str(exc), reason="invalid_definition")
    error.problems = [{"path": p, "reason": r} for p, r in exc.problems]  # type: ignore[attr-defined]
    return error


def _diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """A short, readable diff of two canonical definitions (top-level keys; condition as a whole)."""
    if old is None:
        return [f"+ {new['id']}"]
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"~ {key}: {old.get(key)!r} -> {new.get(key)!r}")
    return lines


class SegmentsAdmin:
    def __init__(
        self,
        store: SegmentsStore,
        *,
        clock: Clock | None = None,
        export_writer: Callable[[str, bytes], str] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or default_clock()
        self.export_writer = export_writer

    # -- reading definitions ----------------------------------------------------------------------
    def _stored(self, tenant: str) -> tuple[dict[str, dict[str, Any]], TenantModels]:
        items, models, _ = self.store.load_definitions(tenant)
        return {i["id"]: i for i in items}, TenantModels.model_validate(models) if models else TenantModels()

    def _plan(self, tenant: str) -> TenantPlan:
        stored, models = self._stored(tenant)
        return TenantPlan(
            [StoredSegment(parse_definition(i["definition"]), int(i["version"])) for i in stored.values()],
            models,
        )

    # -- apply ------------------------------------------------------------------------------------
    def apply(self, tenant: str, documents: Sequence[Any], *, dry_run: bool = False) -> ApplyResult:
        problems: list[tuple[str, str]] = []
        parsed: dict[str, SegmentDefinition] = {}
        for index, doc in enumerate(documents):
            where = f"[{index}]" if not isinstance(doc, dict) or "id" not in doc else str(doc["id"])
            try:
                definition = parse_definition(doc, where=where)
            except SegmentLanguageError as exc:
                problems += exc.problems
                continue
            if definition.id in parsed:
                problems.append((definition.id, "defined twice"))
            parsed[definition.id] = definition
        if problems:
            raise _invalid(SegmentLanguageError(problems))
        stored, _ = self._stored(tenant)
        combined = {sid: parse_definition(i["definition"]) for sid, i in stored.items()} | parsed
        try:
            check_definitions(combined)
        except SegmentLanguageError as exc:
            raise _invalid(exc) from None
        now = iso_of(self.clock.now().timestamp())
        results, writes = [], []
        for sid, definition in parsed.items():
            held = stored.get(sid)
            new = definition.canonical()
            old = held["definition"] if held else None
            if old == new:
                results.append({"id": sid, "action": "unchanged", "version": int(held["version"])})  # type: ignore[index]
                continue
            version = int(held["version"]) + 1 if held else 1
            results.append(
                {
                    "id": sid,
                    "action": "updated" if held else "created",
                    "version": version,
                    "diff": _diff(old, new),
                }
            )
            writes.append(
                (
                    {
                        "id": sid,
                        "definition": new,
                        "version": version,
                        "created_at": held.get("created_at", now) if held else now,
                        "updated_at": now,
                    },
                    int(held["version"]) if held else None,
                )
            )
        body: dict[str, Any] = {"dry_run": dry_run, "segments": results}
        if dry_run or not writes:
            return ApplyResult(body)
        try:
            self.store.put_definitions(tenant, writes)
        except ConditionFailed:
            raise Conflict("a segment changed meanwhile; apply again", reason="changed_meanwhile") from None
        self.store.bump_generation(tenant)
        changed = sorted(f"{item['id']}@{item['version']}" for item, _ in writes)
        event = self._backfill(tenant, changed, now)
        body["backfill"] = {"replay_id": event.replay_id, "segments": changed}
        return ApplyResult(body, [event])

    def _backfill(self, tenant: str, changed: list[str], now: str) -> ReplayRequested:
        return request_backfill(self.store, tenant, changed, now)

    # -- read side --------------------------------------------------------------------------------
    def list(self, tenant: str) -> dict[str, Any]:
        stored, _ = self._stored(tenant)
        counts = self.store.counts(tenant) if stored else {}  # one pass over the tenant index
        return {
            "segments": [
                {
                    "id": sid,
                    "name": item["definition"].get("name", sid),
                    "version": int(item["version"]),
                    "count": counts.get(sid, 0),
                    "updated_at": item.get("updated_at"),
                }
                for sid, item in sorted(stored.items())
            ]
        }

    def _one(self, tenant: str, sid: str) -> dict[str, Any]:
        stored, _ = self._stored(tenant)
        if sid not in stored:
            raise NotFound(f"no segment {sid!r}")
        return stored[sid]

    def show(self, tenant: str, sid: str) -> dict[str, Any]:
        item = self._one(tenant, sid)
        backfills = [
            p
            for p in self.store.progress(tenant)
            if any(s.split("@")[0] == sid for s in p.get("segments", []))
        ]
        return {
            "id": sid,
            "version": int(item["version"]),
            "definition": item["definition"],
            "created_at": item.get("created_at"),
            "updated_at": item.get("updated_at"),
            "count": self.store.count(tenant, sid),
            "backfills": backfills,
        }

    def delete(self, tenant: str, sid: str) -> ApplyResult:
        stored, _ = self._stored(tenant)
        if sid not in stored:
            raise NotFound(f"no segment {sid!r}")
        users = sorted(
            other
            for other, item in stored.items()
            if other != sid and sid in references(parse_definition(item["definition"]))
        )
        if users:
            raise Conflict(f"segment {sid!r} is used by {', '.join(users)}", reason="segment_in_use")
        self.store.delete_definition(tenant, sid)
        self.store.bump_generation(tenant)
        now = iso_of(self.clock.now().timestamp())
        # every member leaves as its profile is re-evaluated: the replay does it for all of them
        event = self._backfill(tenant, [f"{sid}@deleted"], now)
        return ApplyResult({"deleted": sid, "backfill": {"replay_id": event.replay_id}}, [event])

    def count(self, tenant: str, sid: str) -> dict[str, Any]:
        self._one(tenant, sid)
        return {"id": sid, "count": self.store.count(tenant, sid)}

    def members(
        self, tenant: str, sid: str, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        self._one(tenant, sid)
        items, next_cursor = self.store.members(tenant, sid, limit=limit, cursor=cursor)
        return {"id": sid, "members": items, "next_cursor": next_cursor}

    def export(self, tenant: str, sid: str) -> dict[str, Any]:
        self._one(tenant, sid)
        if self.export_writer is None:
            raise BadRequest("exports are not configured", reason="no_export")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["profile_id", "segment_version", "entered_at", "backfill"])
        rows, cursor = 0, None
        while True:
            items, cursor = self.store.members(tenant, sid, limit=1000, cursor=cursor)
            for item in items:
                writer.writerow(
                    [
                        item["profile_id"],
                        item.get("segment_version"),
                        item.get("entered_at"),
                        item.get("backfill"),
                    ]
                )
                rows += 1
            if not cursor:
                break
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        key = f"exports/{tenant}/segments/{sid}/{stamp}.csv"
        location = self.export_writer(key, buffer.getvalue().encode("utf-8"))
        return {"id": sid, "rows": rows, "key": key, "location": location}

    # -- preview and why --------------------------------------------------------------------------
    def preview(self, tenant: str, document: Any, *, sample: int = 20, limit: int = 500) -> dict[str, Any]:
        try:
            definition = parse_definition(document)
        except SegmentLanguageError as exc:
            raise _invalid(exc) from None
        plan = self._plan(tenant)
        combined = {sid: parse_definition(self._one(tenant, sid)["definition"]) for sid in plan.segments}
        combined[definition.id] = definition
        try:
            check_definitions(combined)
        except SegmentLanguageError as exc:
            raise _invalid(exc) from None
        compiled = compile_condition(definition.condition)
        kept = {f"traits.{k}" for k in plan.keep_traits} | {f"computed.{k}" for k in plan.keep_computed}
        kept |= {f"events.{n}" for n in plan.keep_event_names} | {"tags"}
        unknown = sorted(
            r
            for r in compiled.reads
            if r not in kept and not r.startswith(("consent.", "identifiers.", "segment."))
        )
        missing_logs = sorted(n for n in compiled.log_events if n not in plan.log_events)
        now = self.clock.now().timestamp()
        limit = max(1, min(limit, MAX_PREVIEW_SAMPLE))
        states, _ = self.store.states_page(tenant, limit=limit, cursor=None)
        matched: list[str] = []
        evaluated = 0
        for state in states:
            if state.merged_into:
                continue
            evaluated += 1
            ctx = plan.context(state.snapshot, state.log, now)
            ctx.segments = set(state.members)
            if compiled.test(ctx):
                matched.append(state.profile_id)
        notes = []
        if unknown:
            notes.append(
                "not kept by the segments stage until a saved segment reads them (save to backfill): "
                + ", ".join(unknown)
            )
        if missing_logs:
            notes.append("windowed counts start when a saved segment needs them: " + ", ".join(missing_logs))
        return {
            "id": definition.id,
            "evaluated": evaluated,
            "matched": len(matched),
            "sample": matched[:sample],
            "notes": notes,
        }

    def why(self, tenant: str, sid: str, profile_id: str) -> dict[str, Any]:
        item = self._one(tenant, sid)
        plan = self._plan(tenant)
        loaded = self.store.get_states(tenant, [profile_id])
        if profile_id not in loaded:
            raise NotFound(f"the segments stage has not seen profile {profile_id!r}")
        state = loaded[profile_id][0]
        ctx = plan.context(state.snapshot, state.log, self.clock.now().timestamp())
        ctx.segments = set(state.members)
        report = explain(parse_definition(item["definition"]).condition, ctx)
        return {
            "segment": sid,
            "version": int(item["version"]),
            "profile_id": profile_id,
            "profile_version": state.version,
            "member": sid in state.members,
            "held": report["held"],
            "explain": report,
            "due_at": iso_of(state.due) if state.due is not None else None,
        }

    def models(self, tenant: str) -> dict[str, Any]:
        _, models = self._stored(tenant)
        return models.model_dump(mode="json")

    def set_models(self, tenant: str, data: Any) -> ApplyResult:
        from pydantic import ValidationError

        try:
            models = TenantModels.model_validate(data)
        except ValidationError as exc:
            raise BadRequest(
                f"invalid models: {exc.errors(include_url=False)}", reason="invalid_models"
            ) from None
        self.store.put_models(tenant, models.model_dump(mode="json"))
        self.store.bump_generation(tenant)
        now = iso_of(self.clock.now().timestamp())
        event = self._backfill(tenant, [f"models@{now}"], now)
        return ApplyResult(
            {"models": models.model_dump(mode="json"), "backfill": {"replay_id": event.replay_id}}, [event]
        )
