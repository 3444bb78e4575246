"""Journey administration: apply (validate + publish a version), list, show, pause, resume,
archive, funnel and the per-enrollment decision log. Used by the admin API routes and tests.

Publishing is all-or-nothing: the definition is validated completely first (paths and reasons),
then the version item and the journey head are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from huiliu.clock import Clock, default_clock
from huiliu.errors import BadRequest, ConditionFailed, Conflict, NotFound
from huiliu.journeys.definition import Catalog, DefinitionError, Journey, definition_hash, parse_definition
from huiliu.journeys.interest import Interest, head_interest, interest_of
from huiliu.journeys.interpreter import iso
from huiliu.journeys.migration import MigrationPlan, plan_migration
from huiliu.journeys.repository import JourneysRepository, heads_pk, journey_pk, version_sk
from huiliu.journeys.service import ACTIVE, ARCHIVED, PAUSED, resume_parked


class InvalidDefinition(BadRequest):
    reason = "invalid_journey"

    def __init__(self, error: DefinitionError) -> None:
        super().__init__(str(error))
        self.problems = error.as_json()


class JourneyAdmin:
    def __init__(
        self,
        repo: JourneysRepository,
        catalog_for: Callable[[str], Catalog] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.repo = repo
        self.catalog_for = catalog_for or (lambda tenant: Catalog())
        self.clock = clock or default_clock()

    # -- publishing -------------------------------------------------------------------------
    def validate(self, tenant: str, document: dict[str, Any]) -> dict[str, Any]:
        try:
            journey = parse_definition({**document, "version": 0}, self.catalog_for(tenant))
        except DefinitionError as exc:
            raise InvalidDefinition(exc) from None
        return {"valid": True, "journey_id": journey.id, "steps": [s.id for s in journey.steps]}

    def apply(self, tenant: str, document: dict[str, Any]) -> dict[str, Any]:
        """Publish a new version (a no-op when the content is unchanged). Running enrollments stay
        on the version they entered — unless the document asks to ``migrate`` them
        (``migrate: {steps: {old_wait: new_wait}}``, see huiliu.journeys.migration): then every
        wait step of the active version must map, or nothing is published."""
        migrate_request = document.get("migrate")
        document = {k: v for k, v in document.items() if k not in ("version", "migrate")}
        try:
            journey = parse_definition({**document, "version": 0}, self.catalog_for(tenant))
        except DefinitionError as exc:
            raise InvalidDefinition(exc) from None
        content = definition_hash(document)
        head = self.repo.head(tenant, journey.id)
        plan = None
        if migrate_request is not None and migrate_request is not False:
            plan = self._plan(head, journey, migrate_request)
        if head and head.get("hash") == content and head.get("status") != ARCHIVED:
            return {
                "journey_id": journey.id,
                "version": head["active_version"],
                "changed": False,
                "status": head["status"],
            }
        latest = int(head["latest_version"]) if head else 0
        version = latest + 1
        migrate_from = plan.as_json() if plan is not None else None
        now = iso(self.clock.now())
        status = head.get("status", ACTIVE) if head else ACTIVE
        if status == ARCHIVED:
            status = ACTIVE
        new_head = {
            "pk": heads_pk(tenant),
            "sk": f"J#{journey.id}",
            "journey_id": journey.id,
            "name": journey.name,
            "status": status,
            "active_version": version,
            "latest_version": version,
            "hash": content,
            "trigger": journey.trigger.model_dump(exclude_defaults=True),
            "definition": document,
            # What every version ever published reacts to (running enrollments keep their version):
            # the engine drops a profile.changed outside it before any read.
            "interest": _accumulated_interest(head, journey).as_json(),
            "migrate_from": migrate_from,
            "created_at": head.get("created_at", now) if head else now,
            "updated_at": now,
        }
        version_item = {
            "pk": journey_pk(tenant, journey.id),
            "sk": version_sk(version),
            "version": version,
            "definition": document,
            "hash": content,
            "published_at": now,
            "migrate_from": migrate_from,
        }
        try:
            self.repo.publish(tenant, new_head, version_item, expected=latest)
        except ConditionFailed:
            raise Conflict(
                f"journey {journey.id} was published concurrently; apply again", reason="conflict"
            ) from None
        out = {"journey_id": journey.id, "version": version, "changed": True, "status": status}
        if plan is not None:
            out["migrates"] = plan.as_json()
        return out

    def _plan(self, head: dict[str, Any] | None, journey: Journey, request: Any) -> MigrationPlan:
        if head is None:
            raise InvalidDefinition(
                DefinitionError([("migrate", "nothing to migrate: no version published")])
            )
        active = int(head.get("active_version", 0) or 0)
        old = _journey_or_none(head.get("definition"), active)
        if old is None:
            raise InvalidDefinition(DefinitionError([("migrate", f"version {active} cannot be read")]))
        try:
            return plan_migration(old, journey, request)
        except DefinitionError as exc:
            raise InvalidDefinition(exc) from None

    # -- reading --------------------------------------------------------------------------
    def list(self, tenant: str) -> list[dict[str, Any]]:
        return [_summary(h) for h in self.repo.heads(tenant)]

    def show(self, tenant: str, journey_id: str) -> dict[str, Any]:
        head = self._head(tenant, journey_id)
        versions = [
            {"version": v["version"], "published_at": v.get("published_at"), "hash": v.get("hash")}
            for v in self.repo.versions(tenant, journey_id)
        ]
        return {
            **_summary(head),
            "definition": head.get("definition"),
            "versions": versions,
            "funnel": self.funnel(tenant, journey_id),
            "recent_enrollments": [
                {
                    "entered_at": i["sk"].split("#", 1)[0],
                    "enrollment_id": i["sk"].split("#", 1)[1],
                    "profile_id": i.get("profile_id"),
                    "holdout": bool(i.get("holdout")),
                }
                for i in self.repo.recent_enrollments(tenant, journey_id)
            ],
        }

    def funnel(self, tenant: str, journey_id: str) -> dict[str, Any]:
        head = self._head(tenant, journey_id)
        counts = self.repo.funnel(tenant, journey_id)
        steps = [s["id"] for s in (head.get("definition") or {}).get("steps", [])]
        entered = counts.get("entered", 0)
        held = counts.get("entered_holdout", 0)
        converted = counts.get("converted", 0)
        converted_held = counts.get("converted_holdout", 0)
        treated_rate = converted / entered if entered else None
        holdout_rate = converted_held / held if held else None
        reached = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("reached:")}
        return {
            "journey_id": journey_id,
            "entered": entered,
            "steps": [{"step": s, "reached": reached.get(s, 0)} for s in steps]
            + [{"step": s, "reached": n} for s, n in sorted(reached.items()) if s not in steps],
            "exited": {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("exited:")},
            "completed": counts.get("completed", 0),
            "converted": converted,
            "messages_requested": counts.get("messages", 0),
            "holdout": {"entered": held, "converted": converted_held},
            "conversion_rate": treated_rate,
            "holdout_conversion_rate": holdout_rate,
            "lift": (treated_rate - holdout_rate)
            if treated_rate is not None and holdout_rate is not None
            else None,
        }

    def why(self, tenant: str, profile_id: str, journey_id: str | None = None) -> dict[str, Any]:
        enrollments = self.repo.enrollments_of(tenant, profile_id, journey_id)
        if not enrollments:
            raise NotFound(
                f"profile {profile_id} has no enrollment{' in ' + journey_id if journey_id else ''}"
            )
        return {
            "profile_id": profile_id,
            "enrollments": [
                {
                    "enrollment_id": e.enrollment_id,
                    "journey_id": e.journey_id,
                    "journey_version": e.journey_version,
                    "instance": e.instance,
                    "status": e.status,
                    "step": e.step_id,
                    "next_at": e.next_at,
                    "exit_reason": e.exit_reason,
                    "holdout": e.holdout,
                    "entered_at": e.entered_at,
                    "converted_at": e.converted_at,
                    "log": e.log,
                }
                for e in sorted(enrollments, key=lambda x: x.entered_at)
            ],
        }

    # -- lifecycle ------------------------------------------------------------------------
    def pause(self, tenant: str, journey_id: str) -> dict[str, Any]:
        return self._status(tenant, journey_id, PAUSED, (ACTIVE, PAUSED))

    def resume(self, tenant: str, journey_id: str) -> dict[str, Any]:
        out = self._status(tenant, journey_id, ACTIVE, (PAUSED, ACTIVE))
        out["resumed_waits"] = resume_parked(self.repo, tenant, journey_id)
        return out

    def archive(self, tenant: str, journey_id: str) -> dict[str, Any]:
        return self._status(tenant, journey_id, ARCHIVED, (ACTIVE, PAUSED, ARCHIVED))

    def _status(self, tenant: str, journey_id: str, status: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        head = self._head(tenant, journey_id)
        try:
            self.repo.set_status(tenant, journey_id, status, allowed)
        except ConditionFailed:
            raise Conflict(f"journey {journey_id} is {head.get('status')}: cannot become {status}") from None
        return {"journey_id": journey_id, "status": status, "at": iso(self.clock.now())}

    def _head(self, tenant: str, journey_id: str) -> dict[str, Any]:
        head = self.repo.head(tenant, journey_id)
        if head is None:
            raise NotFound(f"no journey {journey_id}")
        return head


def _accumulated_interest(head: dict[str, Any] | None, journey: Journey) -> Interest:
    mine = interest_of(journey)
    if head is None:
        return mine
    previous = _journey_or_none(head.get("definition"), int(head.get("active_version", 1) or 1))
    return head_interest(head, previous) | mine


def _journey_or_none(document: Any, version: int) -> Journey | None:
    if not isinstance(document, dict):
        return None
    try:
        return parse_definition({**document, "version": version})
    except DefinitionError:
        return None


def _summary(head: dict[str, Any]) -> dict[str, Any]:
    return {
        "journey_id": head["journey_id"],
        "name": head.get("name", ""),
        "status": head.get("status"),
        "active_version": head.get("active_version"),
        "latest_version": head.get("latest_version"),
        "trigger": head.get("trigger"),
        "updated_at": head.get("updated_at"),
    }
