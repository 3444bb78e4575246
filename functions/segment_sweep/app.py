"""Segment sweep: every minute, re-evaluate exactly the profiles whose due time has come.

The schedule's input carries its scheduled time (huiliu.stage.tick_handler); the service queries the
sharded due index up to that time — no scan — and publishes each profile's segment.entered/exited
before committing it (a retried tick republishes the same event ids).
"""

from __future__ import annotations

from typing import Any

from huiliu.stage import tick_handler


def _build() -> Any:
    """Built on first use: no boto3 at import time."""
    from huiliu.segments.wiring import build_sweep_service

    return build_sweep_service()


handler = tick_handler("segment_sweep", build=_build)
