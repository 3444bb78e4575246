"""Minute tick: steps every journey enrollment whose wait is due at or before the schedule's time.

The time comes from the schedule's input (``{"time": "<aws.scheduler.scheduled-time>"}``), never
the wall clock, so a late tick processes exactly the window it was scheduled for — and the local
runtime's movable clock drives it (huiliu.stage.tick_handler).
"""

from huiliu.stage import tick_handler


def _build():  # type: ignore[no-untyped-def]
    from huiliu.journeys.wiring import build_tick_service  # pydantic models: first record, not import

    return build_tick_service()


handler = tick_handler("journey_tick", build=_build)
