"""Minute tick: steps every journey enrollment whose wait is due at or before the schedule's time.

The time comes from the schedule's input (``time`` of the scheduled event), never the wall clock,
so a late or replayed tick processes exactly the window it was scheduled for — and the local
runtime's movable clock drives it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from huiliu.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from huiliu.journeys.service import JourneyTicker

_deps: dict[str, Any] = {}


def configure(ticker: JourneyTicker | None = None) -> None:
    _deps.clear()
    if ticker is not None:
        _deps["ticker"] = ticker


def _ticker() -> JourneyTicker:
    if "ticker" not in _deps:
        from huiliu.journeys.wiring import build_ticker

        _deps["ticker"] = build_ticker()
    return _deps["ticker"]


def tick_time(event: dict[str, Any]) -> datetime:
    raw = event.get("time")
    if not raw:
        from huiliu.clock import utcnow

        return utcnow()
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = tick_time(event)
    report = _ticker().tick(now)
    logger.info(
        "journey tick",
        extra={
            "tick": report.now,
            "due": report.due,
            "stepped": report.stepped,
            "conflicts": report.conflicts,
        },
    )
    metrics.add_metric(name="JourneyStepsDue", unit="Count", value=report.due)
    metrics.add_metric(name="JourneySteps", unit="Count", value=report.stepped)
    return {"tick": report.now, "due": report.due, "stepped": report.stepped, "actions": report.actions}
