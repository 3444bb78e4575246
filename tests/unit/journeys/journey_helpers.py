"""Builders shared by the journeys tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from huiliu.journeys.definition import Journey, parse_definition
from huiliu.journeys.examples import example_documents

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai
TENANT = "acme"


def example(journey_id: str, version: int = 1) -> Journey:
    doc = next(d for d in example_documents() if d["id"] == journey_id)
    return parse_definition({**doc, "version": version})


def journey(doc: dict[str, Any], version: int = 1) -> Journey:
    return parse_definition({**doc, "version": version})
