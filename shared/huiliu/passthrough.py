"""Consumers whose stage logic is not built yet: they receive, log with the correlation id, count
and acknowledge, so the wiring (queue → function → partial batch failures → DLQ) is exercised
end to end. Later issues replace each with its real stage.
"""

from __future__ import annotations

from typing import Any

from huiliu.observability import bind_correlation, logger, metrics


def record_handler(stage: str) -> Any:
    def handle(record: Any) -> None:
        from huiliu.envelopes import parse_eventbridge_body  # pydantic: first record, not import

        envelope = parse_eventbridge_body(record.body)
        bind_correlation(envelope.correlation_id, tenant_id=envelope.tenant_id)
        logger.info(
            "received",
            extra={"stage": stage, "detail_type": envelope.detail_type, "source": envelope.source},
        )
        metrics.add_metric(name=f"{stage}_received", unit="Count", value=1)

    return handle
