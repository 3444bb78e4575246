"""Notify function: ``notification.requested`` (one queue per channel) → a sent message or a
recorded reason; ``profile.changed/merged/erased`` → the contact projection and erasure.

A thin handler on the stage runner (huiliu.stage); the stage is huiliu.notify.service.NotifyService.
"""

from __future__ import annotations

from typing import Any

from huiliu.stage import configure as configure_stage
from huiliu.stage import queue_handler

STAGE = "notify"


def _build() -> Any:
    from huiliu.notify.wiring import build_service

    return build_service()


handler = queue_handler(STAGE, build=_build)


def configure(service: Any | None = None, publisher: Any | None = None) -> None:
    """Inject a NotifyService and a publisher (tests, local runtime); real ones are built lazily."""
    configure_stage(STAGE, service=service, publisher=publisher)
