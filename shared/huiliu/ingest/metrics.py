"""Per-connector ingest metrics: received, accepted, duplicates, rejected (with a reason)."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

NAMESPACE = "Huiliu"


class IngestMetrics(Protocol):
    def count(self, name: str, connector: str, value: int = 1, reason: str | None = None) -> None: ...


class PowertoolsIngestMetrics:
    """CloudWatch EMF through Powertools ``single_metric`` (each carries its own dimensions)."""

    def count(self, name: str, connector: str, value: int = 1, reason: str | None = None) -> None:
        if value <= 0:
            return
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        dims = {"connector": connector or "unknown"}
        if reason:
            dims["reason"] = reason
        with single_metric(
            name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE, default_dimensions=dims
        ):
            pass


class MemoryIngestMetrics:
    """Counts in memory: ``counts[(name, connector, reason)]``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str | None]] = Counter()

    def count(self, name: str, connector: str, value: int = 1, reason: str | None = None) -> None:
        if value > 0:
            self.counts[(name, connector, reason)] += value

    def total(self, name: str, connector: str | None = None) -> int:
        return sum(v for (n, c, _), v in self.counts.items() if n == name and connector in (None, c))
