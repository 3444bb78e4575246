"""Ingestion counts for the report, kept where the requests are answered: in ingest.

Webhooks go from ingest straight to identity's queue (no bus event per accepted event), and a
rejected request never becomes an event at all. So ingest counts, per tenant, day and connector,
the events it accepted and the requests it refused (by reason: ``invalid_signature``,
``invalid_payload``, ``payload_too_large`` …), in memory, and hands them to the reports stage as
``ingest.counted`` messages on ReportsQueue — one SendMessageBatch (≤ 10 rows) per flush:

- a request that was **refused** flushes at once (the 4xx path pays one SQS request; refusals are
  what an operator wants to see soon);
- **accepted** events are flushed at the end of the first request ``flush_seconds`` (default 10 s)
  after the previous flush, or when 500 are pending: at a steady rate a container sends one message
  per 10 s however many webhooks it answers (≈ $0 per event); a container answering less than one
  request per 10 s flushes on every request.

The bound, stated: counts accepted within ``flush_seconds`` of a container's last flush wait for
that container's next request; if Lambda retires the container first (idle for minutes), they are
lost — at most ``flush_seconds`` of one container's accepted events per burst. Refusals are never
held back. Only refusals after the tenant was found count per tenant (an unknown tenant, an
unknown write key, a body too large to read have no tenant: they are CloudWatch metrics per
connector and reason, ``Huiliu/rejected``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from huiliu.bus import OutgoingEvent, PartialPublishFailed
from huiliu.observability import logger

DETAIL_TYPE = "ingest.counted"
SOURCE = "huiliu.ingest"
FLUSH_SECONDS = 10.0
MAX_PENDING = 500


class IngestCounted(BaseModel):
    """One ``ingest.counted`` message: one tenant, day and connector (one counter item)."""

    event_id: str
    tenant_id: str
    day: str = Field(description="YYYY-MM-DD (UTC) the requests were answered")
    connector: str
    ingested: int = Field(default=0, ge=0, description="events accepted (new, not duplicates)")
    rejected: dict[str, int] = Field(default_factory=dict, description="refused requests by reason")


class IngestCounts:
    def __init__(
        self,
        publish: Callable[[Sequence[OutgoingEvent]], Any],
        *,
        flush_seconds: float = FLUSH_SECONDS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.publish = publish
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.pending: dict[tuple[str, str, str], Counter[str]] = {}
        self.last_flush: datetime | None = None

    def record(
        self,
        tenant: str | None,
        connector: str,
        now: datetime,
        *,
        accepted: int = 0,
        rejected: str | None = None,
    ) -> None:
        if not tenant or (not accepted and not rejected):
            return
        counts = self.pending.setdefault(
            (tenant, now.strftime("%Y-%m-%d"), connector or "unknown"), Counter()
        )
        if accepted:
            counts["ingested"] += accepted
        if rejected:
            counts[f"rejected:{rejected}"] += 1

    def request_done(self, now: datetime) -> int:
        """At the end of a request: flush if due. Returns the rows sent (0: kept for later)."""
        if not self.pending:
            return 0
        refused = any(k.startswith("rejected:") for c in self.pending.values() for k in c)
        waited = self.last_flush is None or (now - self.last_flush).total_seconds() >= self.flush_seconds
        held = sum(c["ingested"] for c in self.pending.values())
        if not (refused or waited or held >= self.max_pending):
            return 0
        return self.flush(now)

    def flush(self, now: datetime) -> int:
        rows = []
        for (tenant, day, connector), counts in self.pending.items():
            rows.append(
                IngestCounted(
                    event_id=uuid.uuid4().hex,
                    tenant_id=tenant,
                    day=day,
                    connector=connector,
                    ingested=counts["ingested"],
                    rejected={k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("rejected:")},
                )
            )
        keys = list(self.pending)
        try:
            self.publish([OutgoingEvent(SOURCE, DETAIL_TYPE, r.model_dump(mode="json")) for r in rows])
        except PartialPublishFailed as exc:  # the rows that went are done; the others wait
            keep = {keys[i] for i in exc.failed}
            self.pending = {k: v for k, v in self.pending.items() if k in keep}
            logger.warning(
                "some ingest counts not sent; kept for the next request", extra={"rows": len(keep)}
            )
            return len(rows) - len(keep)
        except Exception:  # never fail a webhook for a report count: keep them for the next flush
            logger.warning("ingest counts not sent; kept for the next request", exc_info=True)
            return 0
        self.pending.clear()
        self.last_flush = now
        return len(rows)
