"""Request bodies of the profile admin routes (imported on first use: keeps the admin cold start lean)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UnmergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merge_id: str | None = Field(default=None, min_length=1)
    absorbed_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> UnmergeBody:
        if not self.merge_id and not self.absorbed_id:
            raise ValueError("give merge_id or absorbed_id")
        return self


class IdentifierBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=256)
