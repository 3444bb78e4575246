"""Builds the real segments collaborators from settings (handlers call this once, lazily)."""

from __future__ import annotations

from huiliu.segments.repository import DynamoSegmentsStore
from huiliu.segments.service import SegmentsService


def build_store() -> DynamoSegmentsStore:
    from huiliu.settings import get_settings

    return DynamoSegmentsStore(get_settings().segments_table)


def build_service() -> SegmentsService:
    return SegmentsService(build_store())


def build_sweep_service() -> SegmentsService:
    """The sweep publishes each profile's transitions itself, before committing them."""
    from huiliu.bus import bus_publisher

    return SegmentsService(build_store(), sweep_publisher=bus_publisher())
