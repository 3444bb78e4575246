"""Identity as a stage of the runner (huiliu.stage): canonical events and replay requests in."""

from __future__ import annotations

from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.contracts import ReplayRequested
from huiliu.identity.service import IdentityService
from huiliu.models import CanonicalEvent
from huiliu.observability import logger, metrics


class IdentityStage:
    accepts = (CanonicalEvent, ReplayRequested)

    def __init__(self, service: IdentityService) -> None:
        self.service = service

    def handle(self, event: Any) -> list[OutgoingEvent]:
        if isinstance(event, ReplayRequested):
            from huiliu.identity.replay import replay_page

            out = replay_page(self.service.repo, event, self.service.clock.now())
            logger.info(
                "replay page", extra={"replay_id": event.replay_id, "page": event.page, "events": len(out)}
            )
            return out
        logger.append_keys(message_id=event.message_id)
        outcome = self.service.process(event)
        logger.debug(  # the runner's "batch handled" line names the profile: one INFO line per batch
            "identity resolved",
            extra={"status": outcome.status, "profile_id": outcome.profile_id, "merged": outcome.merged},
        )
        metrics.add_metric(name=f"Identity_{outcome.status}", unit="Count", value=1)
        return outcome.events
