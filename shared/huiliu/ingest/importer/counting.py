"""A CSV import's rows in the report's ingestion counts (connector ``csv-import``).

The HTTP connectors count in ingest (huiliu.reports.ingest_counts); an import counts here, in the
same ``ingest.counted`` message the reports stage already reads: per tenant, day and connector,
the events accepted (new: not duplicates) and the rows refused by reason (``no_identifier``,
``invalid_timestamp``, ``column_count`` …; a file refused as a whole — bad mapping, no header,
undecodable — counts one under its reason).

When: with every published chunk, **before** its checkpoint, and once at the end. The message id is
derived from the file and the line range it covers, so a retry that resumes from the last
checkpoint and redoes the same chunk sends the same id (reports skip an id they counted). Cost: one
SQS message per chunk (100 events by default: ≈ $0.004 per million rows). A count that cannot be
sent is kept and sent with the next chunk (its range grows); a failing report never fails an
import. Bound, stated: counts sent for a chunk whose checkpoint was then lost, retried on another
reports container after its duplicate memory, count twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from huiliu.bus import OutgoingEvent
from huiliu.contracts import derive_event_id
from huiliu.ingest.importer.mapping import CONNECTOR
from huiliu.observability import logger
from huiliu.reports.ingest_counts import DETAIL_TYPE, IngestCounted

SOURCE = "huiliu.importer"


class ImportCounts:
    """The counts of one invocation's work on one file, sent in ranges of lines."""

    def __init__(
        self,
        publish: Callable[[Sequence[OutgoingEvent]], Any],
        *,
        tenant: str,
        file_id: str,
        now: datetime,
        start_line: int = 0,
    ) -> None:
        self.publish = publish
        self.tenant = tenant
        self.file_id = file_id
        self.day = now.strftime("%Y-%m-%d")
        self.start_line = start_line
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.sent = 0  # messages sent (for tests and logs)

    def accept(self, n: int) -> None:
        self.accepted += n

    def reject(self, code: str) -> None:
        self.rejected[code] += 1

    def send(self, end_line: int) -> bool:
        """Send what is pending for lines (start_line, end_line]; False when kept for later."""
        if not self.accepted and not self.rejected:
            self.start_line = end_line
            return True
        row = IngestCounted(
            event_id=derive_event_id(self.tenant, CONNECTOR, self.file_id, self.start_line, end_line),
            tenant_id=self.tenant,
            day=self.day,
            connector=CONNECTOR,
            ingested=self.accepted,
            rejected=dict(self.rejected),
        )
        try:
            self.publish([OutgoingEvent(SOURCE, DETAIL_TYPE, row.model_dump(mode="json"))])
        except Exception:  # never fail an import for a report count: keep it for the next chunk
            logger.warning("import counts not sent; kept for the next chunk", exc_info=True)
            return False
        self.sent += 1
        self.accepted = 0
        self.rejected.clear()
        self.start_line = end_line
        return True
