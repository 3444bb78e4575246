"""Migrating running enrollments to a newly published version — only when the author asks, and
only when every step an enrollment can be resting at maps to a step of the new version.

A live enrollment always rests at a **wait** step (a transition runs to the next wait or to the
end; a holdout rests at no step). So a migration plan maps each wait step of the version being
replaced to a wait step of the new one, of the same kind (a timed wait — duration or until — to a
timed wait; a wait for an event to a wait for an event). A wait step not named in ``steps`` maps
to the step with the same id when the new version has one. Anything else is refused at apply with
the path and the reason, and nothing is published.

The plan is stored with the new version (``migrate_from``); the engine applies it **lazily**: the
next time it touches an enrollment of the old version (its wait comes due, an event of the person
arrives), it moves it to the new version inside that same transition — no scan, no extra write.
The wait in progress keeps its deadline (``next_at``); what follows it is the new version's.
Plans chain: an enrollment two versions behind moves through both plans if both exist.

Pure: no AWS calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huiliu.journeys.definition import DefinitionError, Journey, WaitStep
from huiliu.journeys.interpreter import MAX_LOG, Enrollment, iso


@dataclass(frozen=True)
class MigrationPlan:
    from_version: int
    steps: dict[str, str]  # every wait step of from_version -> a wait step of the new version

    def as_json(self) -> dict[str, Any]:
        return {"version": self.from_version, "steps": dict(self.steps)}

    @classmethod
    def from_json(cls, data: Any) -> MigrationPlan | None:
        if not isinstance(data, dict) or "version" not in data:
            return None
        return cls(int(data["version"]), {str(k): str(v) for k, v in (data.get("steps") or {}).items()})


def _kind(step: WaitStep) -> str:
    return "an event wait" if step.event is not None else "a timed wait"


def plan_migration(old: Journey, new: Journey, request: Any) -> MigrationPlan:
    """Check the author's mapping (``{"steps": {old_step: new_step}}``) against both versions;
    DefinitionError with ``migrate.steps.<id>`` paths when a step does not map."""
    if request is True:
        request = {}
    if not isinstance(request, dict):
        raise DefinitionError([("migrate", "an object: {steps: {old_step: new_step}} (may be empty)")])
    unknown = set(request) - {"steps"}
    if unknown:
        raise DefinitionError([(f"migrate.{k}", "unknown field (only steps)") for k in sorted(unknown)])
    mapping = request.get("steps") or {}
    if not isinstance(mapping, dict):
        raise DefinitionError([("migrate.steps", "a mapping old step id -> new step id")])
    problems: list[tuple[str, str]] = []
    old_ids = {s.id: s for s in old.steps}
    new_ids = {s.id: s for s in new.steps}
    waits = [s for s in old.steps if isinstance(s, WaitStep)]
    for source in mapping:
        if source not in old_ids:
            problems.append((f"migrate.steps.{source}", f"no step {source!r} in version {old.version}"))
        elif not isinstance(old_ids[source], WaitStep):
            problems.append(
                (f"migrate.steps.{source}", "only wait steps hold running enrollments: map wait steps")
            )
    steps: dict[str, str] = {}
    for wait in waits:
        path = f"migrate.steps.{wait.id}"
        target = mapping.get(wait.id, wait.id)
        if not isinstance(target, str) or target not in new_ids:
            if wait.id in mapping:
                reason = f"no step {target!r} in the new version"
            else:
                reason = (
                    f"wait step {wait.id!r} of version {old.version} has no step of that id in the new "
                    "version: map it to one of its wait steps"
                )
            problems.append((path, reason))
            continue
        step = new_ids[target]
        if not isinstance(step, WaitStep):
            problems.append(
                (path, f"maps to {target!r}, a {step.type} step: a waiting enrollment needs a wait")
            )
            continue
        if _kind(step) != _kind(wait):
            problems.append((path, f"{_kind(wait)} cannot become {_kind(step)} ({target!r})"))
            continue
        steps[wait.id] = target
    if problems:
        raise DefinitionError(problems)
    return MigrationPlan(old.version, steps)


def migrate(e: Enrollment, new: Journey, plan: MigrationPlan, now: datetime) -> Enrollment:
    """The enrollment moved onto ``new`` (a copy); the caller commits it with its next transition."""
    assert e.journey_version == plan.from_version
    moved = e.copy()
    moved.journey_version = new.version
    before = moved.step_id
    if moved.live and before is not None and (moved.wait or {}).get("kind") in ("time", "event"):
        target = plan.steps[before]
        step = new.step(target)
        default = step.next or new.following(step.id)
        moved.step_id = target
        if step.event is not None:
            moved.wait = {
                "kind": "event",
                "event": step.event.event,
                "next": default,
                "on_timeout": step.on_timeout or default,
            }
        else:
            moved.wait = {"kind": "time", "next": default}
    moved.log = [
        *moved.log,
        {
            "at": iso(now),
            "step": moved.step_id,
            "what": "migrated",
            "from_version": plan.from_version,
            "to_version": new.version,
            **({"from_step": before} if before != moved.step_id else {}),
        },
    ][-MAX_LOG:]
    return moved
