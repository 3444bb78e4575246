"""Injectable clocks: journeys wait days, so tests and the local runtime move time, never sleep."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """Wall-clock time shifted by an offset that can only grow (the local runtime's clock)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    @property
    def offset(self) -> timedelta:
        return self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


class ManualClock:
    """A clock that stands still until told to move (unit and property tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


_default: Clock = SystemClock()


def default_clock() -> Clock:
    """The process clock handlers use when none is injected (the local runtime swaps it)."""
    return _default


def set_default_clock(clock: Clock) -> None:
    global _default
    _default = clock


def utcnow() -> datetime:
    return _default.now()


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``3h``, ``2d``, ``1w`` (or combinations such as ``1d12h``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0
    number = ""
    for ch in text.strip().lower():
        if ch.isdigit():
            number += ch
        elif ch in units and number:
            total += int(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}: use forms like 90s, 15m, 3h, 2d, 1w")
    if number or total == 0:
        raise ValueError(f"bad duration {text!r}: use forms like 90s, 15m, 3h, 2d, 1w")
    return timedelta(seconds=total)
