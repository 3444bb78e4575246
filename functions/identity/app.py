"""Identity function: ``event.ingested`` (via SQS) -> one profile per person; and snapshot replay.

A thin handler on the stage runner (huiliu.stage): each SQS body is an EventBridge event whose
``detail`` is a CanonicalEvent (or a ``profiles.replay_requested``); a record that fails fails alone
(partial batch response); redelivery is a no-op thanks to the processed marker, and republishes the
same out-events with the same event ids.
"""

from __future__ import annotations

from typing import Any

from huiliu.stage import configure as configure_stage
from huiliu.stage import queue_handler

STAGE = "identity"


def _build() -> Any:
    from huiliu.identity.stage import IdentityStage
    from huiliu.identity.wiring import build_service

    return IdentityStage(build_service())


handler = queue_handler(STAGE, build=_build)


def configure(service: Any | None = None, publisher: Any | None = None) -> None:
    """Inject an IdentityService and a publisher (tests, local runtime); real ones are built lazily."""
    from huiliu.identity.stage import IdentityStage

    configure_stage(
        STAGE, service=IdentityStage(service) if service is not None else None, publisher=publisher
    )
