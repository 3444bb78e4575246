"""Request and response models of the profile admin routes (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UnmergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"absorbed_id": "p123"}]})

    merge_id: str | None = Field(default=None, min_length=1, max_length=128)
    absorbed_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one(self) -> UnmergeBody:
        if not self.merge_id and not self.absorbed_id:
            raise ValueError("give merge_id or absorbed_id")
        return self


class IdentifierBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"type": "email", "value": "li@example.com"}]}
    )

    type: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=256)


class IdentifierOut(BaseModel):
    type: str
    value: str


class ProfileView(BaseModel):
    """The 360 view: the live profile, its identifiers, merges and one page of the timeline."""

    profile_id: str
    requested_id: str
    profile: dict[str, Any]
    identifiers: list[IdentifierOut]
    absorbed_ids: list[str]
    merges: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    next_cursor: str | None = None


class UnmergeResult(BaseModel):
    profile_id: str
    restored_id: str
    merge_id: str


class EraseResult(BaseModel):
    profile_id: str
    profile_ids: list[str]
    identifiers: int
    items: int


class ExportDocument(BaseModel):
    tenant_id: str
    profile_id: str
    exported_at: str
    profile: dict[str, Any]
    absorbed_profiles: list[dict[str, Any]]
    merges: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
