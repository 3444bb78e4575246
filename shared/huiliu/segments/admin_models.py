"""Response models of the segments admin routes (``huiliu.segments.admin_routes``).

They are the shapes ``SegmentsAdmin`` answers (huiliu.segments.admin); the routes return them, so
Powertools validates every answer against them and ``/admin/openapi.json`` documents them. A
definition itself stays a JSON object (``definition``): its language is docs/segments.md, checked by
the stage's own validator.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from huiliu.segments.builtin import TenantModels


class Backfill(BaseModel):
    """The identity snapshot replay that (re)evaluates every profile for what changed."""

    replay_id: str
    segments: list[str] | None = Field(default=None, description="`id@version` of each segment it evaluates")


class SegmentChange(BaseModel):
    id: str
    action: Literal["created", "updated", "unchanged"]
    version: int = Field(description="the version saved (or that would be, with dry_run)")
    diff: list[str] | None = Field(default=None, description="`+ id` for a new segment, `~ key: old -> new`")


class SegmentsApplied(BaseModel):
    dry_run: bool
    segments: list[SegmentChange]
    backfill: Backfill | None = Field(default=None, description="absent when nothing was written")


class SegmentSaved(SegmentChange):
    backfill: Backfill | None = Field(default=None, description="absent when nothing changed")


class SegmentValid(SegmentChange):
    valid: Literal[True]


class SegmentPreview(BaseModel):
    id: str
    evaluated: int = Field(description="kept profile states looked at")
    matched: int
    sample: list[str] = Field(description="ids of some matching profiles")
    notes: list[str]


class SegmentSummary(BaseModel):
    id: str
    name: str
    version: int
    count: int
    updated_at: str | None = None


class SegmentList(BaseModel):
    segments: list[SegmentSummary]


class ModelsSaved(BaseModel):
    models: TenantModels
    backfill: Backfill


class BackfillProgress(BaseModel):
    replay_id: str
    segments: list[str] = Field(default_factory=list)
    status: str | None = None
    started_at: str | None = None
    evaluated: int | None = None
    entered: int | None = None


class SegmentView(BaseModel):
    id: str
    version: int
    definition: dict[str, Any] = Field(description="the canonical definition (docs/segments.md)")
    created_at: str | None = None
    updated_at: str | None = None
    count: int
    backfills: list[BackfillProgress]


class SegmentDeleted(BaseModel):
    deleted: str
    backfill: Backfill


class SegmentCount(BaseModel):
    id: str
    count: int


class Member(BaseModel):
    profile_id: str
    segment_version: int
    entered_at: str | None = None
    backfill: bool = Field(description="entered through a backfill rather than a live event")


class MemberPage(BaseModel):
    id: str
    members: list[Member]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: the last page")


class SegmentExport(BaseModel):
    id: str
    rows: int
    key: str = Field(description="S3 key of the CSV in the raw bucket")
    location: str = Field(description="a presigned URL (one hour)")


class Explained(BaseModel):
    """One node of the condition: whether it held, and for a leaf the value seen."""

    node: str = Field(description="all | any | not | the leaf's kind")
    held: bool
    condition: dict[str, Any] | None = Field(default=None, description="a leaf: the condition as written")
    seen: Any = Field(default=None, description="a leaf: the value it read")
    children: list[Explained] | None = None


class SegmentWhy(BaseModel):
    segment: str
    version: int
    profile_id: str
    profile_version: int
    member: bool
    held: bool
    explain: Explained
    due_at: str | None = Field(description="when time alone changes the answer next")
