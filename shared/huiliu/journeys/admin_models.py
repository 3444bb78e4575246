"""Response models of the journeys admin routes (``huiliu.journeys.admin_routes``).

They are the shapes ``JourneyAdmin`` answers (huiliu.journeys.admin); the routes return them, so
Powertools validates every answer against them and ``/admin/openapi.json`` documents them. A
definition itself stays a JSON object (docs/journeys.md), checked by the stage's own validator.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["active", "paused", "archived"]


class Migration(BaseModel):
    version: int = Field(description="the version whose running enrollments move")
    steps: dict[str, str] = Field(description="each wait step of that version -> a wait step of the new one")


class JourneyPublished(BaseModel):
    journey_id: str
    version: int = Field(description="the active version (unchanged content: the current one)")
    changed: bool
    status: Status
    migrates: Migration | None = None


class JourneyValid(BaseModel):
    valid: Literal[True]
    journey_id: str
    steps: list[str] = Field(description="the step ids, in order")


class JourneySummary(BaseModel):
    journey_id: str
    name: str
    status: Status | None = None
    active_version: int | None = None
    latest_version: int | None = None
    trigger: dict[str, Any] | None = None
    updated_at: str | None = None


class JourneyList(BaseModel):
    journeys: list[JourneySummary]


class StepReached(BaseModel):
    step: str
    reached: int


class Holdout(BaseModel):
    entered: int
    converted: int


class JourneyFunnel(BaseModel):
    journey_id: str
    entered: int
    steps: list[StepReached]
    exited: dict[str, int] = Field(description="per exit reason")
    completed: int
    converted: int
    messages_requested: int
    holdout: Holdout
    conversion_rate: float | None
    holdout_conversion_rate: float | None
    lift: float | None = Field(description="conversion rate minus the holdout's")


class VersionInfo(BaseModel):
    version: int
    published_at: str | None = None
    hash: str | None = None


class RecentEnrollment(BaseModel):
    entered_at: str
    enrollment_id: str
    profile_id: str | None = None
    holdout: bool


class JourneyView(JourneySummary):
    definition: dict[str, Any] | None = Field(description="the active definition (docs/journeys.md)")
    versions: list[VersionInfo]
    funnel: JourneyFunnel
    recent_enrollments: list[RecentEnrollment]


class EnrollmentView(BaseModel):
    enrollment_id: str
    journey_id: str
    journey_version: int
    instance: str | None = None
    status: str
    step: str | None = None
    next_at: str | None = None
    exit_reason: str | None = None
    holdout: bool
    entered_at: str
    converted_at: str | None = None
    log: list[dict[str, Any]] = Field(description="the decisions taken, oldest first")


class JourneyWhy(BaseModel):
    profile_id: str
    enrollments: list[EnrollmentView]


class JourneyStatus(BaseModel):
    journey_id: str
    status: Status
    at: str
    resumed_waits: int | None = Field(default=None, description="resume: parked waits put back on the clock")
