"""Per-connector ingest metrics: received, accepted, duplicates, rejected (with a reason).

Counts are buffered during a request and flushed once at its end (one EMF line per dimension set),
which costs far less than one ``single_metric`` line per count.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

NAMESPACE = "Huiliu"


class IngestMetrics(Protocol):
    def count(self, name: str, connector: str, value: int = 1, reason: str | None = None) -> None: ...

    def flush(self) -> None: ...


class PowertoolsIngestMetrics:
    """CloudWatch EMF through Powertools ``EphemeralMetrics`` (isolated from the shared ``Metrics``)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str | None], Counter[str]] = {}
        self._metrics: Any = None

    def count(self, name: str, connector: str, value: int = 1, reason: str | None = None) -> None:
        if value > 0:
            self._pending.setdefault((connector or "unknown", reason), Counter())[name] += value

    def flush(self) -> None:
        if not self._pending:
            return
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        if self._metrics is None:
            self._metrics = EphemeralMetrics(namespace=NAMESPACE)
        pending, self._pending = self._pending, {}
        for (connector, reason), counts in pending.items():
            self._metrics.add_dimension(name="connector", value=connector)
            if reason:
                self._metrics.add_dimension(name="reason", value=reason)
            for name, value in counts.items():
                self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            self._metrics.flush_metrics()


class MemoryIngestMetrics:
    """Counts in memory: ``counts[(name, connector, reason)]``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str | None]] = Counter()
        self.flushes = 0

    def count(self, name: str, connector: str, value: int = 1, reason: str | None = None) -> None:
        if value > 0:
            self.counts[(name, connector, reason)] += value

    def flush(self) -> None:
        self.flushes += 1

    def total(self, name: str, connector: str | None = None) -> int:
        return sum(v for (n, c, _), v in self.counts.items() if n == name and connector in (None, c))
