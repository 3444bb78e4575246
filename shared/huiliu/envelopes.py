"""Reading what arrives in an SQS record: an EventBridge event (rules → queues) or an S3 notification."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventBridgeEnvelope(BaseModel):
    """The EventBridge event a bus rule delivers as the SQS message body."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")
    time: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def correlation_id(self) -> str | None:
        value = self.detail.get("correlation_id")
        return str(value) if value else None

    @property
    def tenant_id(self) -> str | None:
        value = self.detail.get("tenant_id")
        return str(value) if value else None


def parse_eventbridge_body(body: str) -> EventBridgeEnvelope:
    return EventBridgeEnvelope.model_validate(json.loads(body))
