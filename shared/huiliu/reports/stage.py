"""The reports stage: a batch of bus events → counter increments, written once per counter item.

The whole batch is one unit: increments are merged in memory, then written (one UpdateItem per
distinct counter item). A failure fails the batch and SQS delivers it again; counters written
before the failure are then added twice — counts are at-least-once (rare: a DynamoDB error mid-batch),
which a report can live with. A body that is not a bus event is logged and not counted.
"""

from __future__ import annotations

import json
import time
from typing import Any

from huiliu.observability import logger
from huiliu.reports.counters import Increments, count
from huiliu.reports.repository import ReportsRepository


def increments_of(bodies: list[str]) -> Increments:
    """Parse each SQS body (an EventBridge event) and add it up; a body that is not an event raises."""
    batch = Increments()
    for body in bodies:
        try:
            envelope = json.loads(body)
            detail_type, detail = str(envelope["detail-type"]), dict(envelope.get("detail") or {})
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("not a bus event: not counted", extra={"body": body[:200]})
            continue
        count(detail_type, detail, batch)
    return batch


class ReportsStage:
    def __init__(self, repo: ReportsRepository, now: Any = time.time) -> None:
        self.repo = repo
        self.now = now

    def handle(self, bodies: list[str]) -> Increments:
        batch = increments_of(bodies)
        self.repo.apply(batch, now_epoch=int(self.now()))
        return batch
