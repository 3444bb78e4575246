"""The reports stage: a batch of bus events → counter increments, written once per counter item.

Increments are merged in memory, then written: one UpdateItem (ADD) per distinct counter item.
Every event adds to exactly one counter item, so a failed write fails exactly that item's events
(partial batch failure); the other items' events are done and are not added again.

How often can an event be counted twice (the bound, stated):

- a duplicate inside a batch, or one this container counted recently (an LRU of the last
  ``SEEN_SIZE`` event ids: a quick SQS redelivery, a producer republishing the same event id),
  is not counted again — free, no DynamoDB write;
- it is counted twice only when (a) an UpdateItem that DynamoDB applied but whose answer was lost
  (timeout, 5xx) is retried — by the SDK or by the batch's retry — or (b) the same event id reaches
  another container (or this one after ``SEEN_SIZE`` newer events). Both are rare at-least-once
  deliveries of the bus and SQS; a per-event guard item would close them at the price of one more
  write per event (the whole stage's cost again), which a report does not need.

A body that is not a bus event is logged and not counted.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from huiliu.observability import logger
from huiliu.reports.counters import Increments, count
from huiliu.reports.repository import ReportsRepository

SEEN_SIZE = 20_000


def _identity(detail_type: str, detail: dict[str, Any]) -> str | None:
    """What makes two deliveries the same event: the contract's event id (``event.ingested``: the
    tenant, connector and message id, identity's dedupe key)."""
    if detail.get("event_id"):
        return f"{detail_type}|{detail['event_id']}"
    if detail_type == "event.ingested" and detail.get("message_id"):
        connector = (detail.get("source") or {}).get("connector")
        return f"{detail_type}|{detail.get('tenant_id')}|{connector}|{detail['message_id']}"
    return None


@dataclass
class Outcome:
    batch: Increments
    failed: list[int] = field(default_factory=list)  # positions of the events to retry
    duplicates: int = 0


def increments_of(
    bodies: list[str], seen: OrderedDict[str, None] | None = None
) -> tuple[Increments, dict[int, str], int]:
    """Parse each SQS body (an EventBridge event) and add it up. Returns the increments, the event
    identity of each counted position, and how many duplicates were skipped."""
    batch = Increments()
    identities: dict[int, str] = {}
    in_batch: set[str] = set()
    duplicates = 0
    for position, body in enumerate(bodies):
        try:
            envelope = json.loads(body)
            detail_type, detail = str(envelope["detail-type"]), dict(envelope.get("detail") or {})
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("not a bus event: not counted", extra={"body": body[:200]})
            continue
        identity = _identity(detail_type, detail)
        if identity is not None:
            if identity in in_batch or (seen is not None and identity in seen):
                duplicates += 1
                continue
            in_batch.add(identity)
            identities[position] = identity
        batch.position = position
        count(detail_type, detail, batch)
    batch.position = -1
    return batch, identities, duplicates


class ReportsStage:
    def __init__(self, repo: ReportsRepository, now: Any = time.time) -> None:
        self.repo = repo
        self.now = now
        self.seen: OrderedDict[str, None] = OrderedDict()

    def handle(self, bodies: list[str]) -> Outcome:
        batch, identities, duplicates = increments_of(bodies, self.seen)
        failed_items = self.repo.apply(batch, now_epoch=int(self.now()))
        failed = sorted({p for item in failed_items for p in batch.sources.get(item, ())})
        for position, identity in identities.items():
            if position not in failed:
                self.seen[identity] = None
                self.seen.move_to_end(identity)
        while len(self.seen) > SEEN_SIZE:
            self.seen.popitem(last=False)
        return Outcome(batch, failed, duplicates)
