"""Notify tick (every minute): deferred requests whose time has come go back to their channel queue."""

from __future__ import annotations

from typing import Any

from huiliu.stage import tick_handler


def _build() -> Any:
    from huiliu.notify.wiring import build_tick

    return build_tick()


handler = tick_handler("notify_tick", build=_build)
