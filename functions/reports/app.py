"""Reports function: bus events (via SQS) → report counters in ReportsTable (huiliu.reports).

A batch's increments are merged and written once per counter item; the events of an item whose
write failed are reported as batch item failures (SQS delivers them again), the rest are done.
"""

from __future__ import annotations

from typing import Any

from huiliu.observability import logger, metrics, tracer

_deps: dict[str, Any] = {}


def _stage() -> Any:
    if "stage" not in _deps:
        from huiliu.reports.repository import ReportsRepository
        from huiliu.reports.stage import ReportsStage
        from huiliu.settings import get_settings

        _deps["stage"] = ReportsStage(ReportsRepository(get_settings().reports_table))
    return _deps["stage"]


def configure(stage: Any | None = None) -> None:
    _deps.clear()
    if stage is not None:
        _deps["stage"] = stage


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    outcome = _stage().handle([r.get("body") or "" for r in records])
    metrics.add_metric(name="reports_events", unit="Count", value=len(records))
    metrics.add_metric(name="reports_counter_writes", unit="Count", value=len(outcome.batch.adds))
    if outcome.duplicates:
        metrics.add_metric(name="reports_duplicates_skipped", unit="Count", value=outcome.duplicates)
    # only the events of counter items whose write failed are delivered again
    return {"batchItemFailures": [{"itemIdentifier": records[p]["messageId"]} for p in outcome.failed]}
