"""Input bounds every canonical event must satisfy before it is accepted (docs/connectors.md, "Bounds").

"Accepted means processed": a request answered 2xx must become events that every later step can
carry — the bus (256 KB per entry), DynamoDB (400 KB per item, 32 levels of nesting, numbers of 38
digits between 1E-130 and 9.99E+125) and identity's own writes (the timeline item holds the event;
``profile.changed`` carries the event's properties next to the profile). So each event is checked
here, after translation (a Segment batch's shared ``context`` already merged in), and a request
with an event beyond a bound gets a 4xx naming the event and the field instead of a 5xx or a
dead letter later.

Policy:
- nesting: at most ``MAX_DEPTH`` levels inside ``traits`` / ``properties`` / ``context``
  (the object itself is level 1) → 400 ``too_deep``;
- numbers: finite, and storable in DynamoDB: an integer has at most 38 digits, a fraction lies
  between 1E-130 and 9.99E+125 in magnitude (or is 0) → 400 ``invalid_number``; JSON text that
  overflows a double (``1e400``) is refused while parsing (``huiliu.connectors.common``);
- strings: lone UTF-16 surrogates (``"\\ud800"``) coming from JSON escapes are replaced by U+FFFD
  while parsing (what Go's and JavaScript's decoders do); any that still reach an event (other
  decoders) → 400 ``invalid_string``;
- size: the event as published (UTF-8 JSON, the exact bytes PutEvents counts, plus room for the
  archive key set later) at most ``MAX_EVENT_BYTES`` → 413 ``event_too_large``.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from huiliu.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from huiliu.models import CanonicalEvent

# Levels inside traits/properties/context. DynamoDB allows 32; identity nests an event's payload
# up to 4 levels down (merge record → profile → traits → value), so 16 leaves ample room.
MAX_DEPTH = 16
# One canonical event on the bus. EventBridge takes 256 KB per entry; identity's profile.changed
# carries the event's properties and changed traits next to the profile (bounded by identity's
# own profile budget), so one event may use a quarter of the entry.
MAX_EVENT_BYTES = 64 * 1024
# ``raw_ref`` (the archive key) is set after the check: keep room for it.
RAW_REF_RESERVE = 512
MAX_INT = 10**38 - 1
MIN_FRACTION = 1e-130
MAX_FRACTION = 9.9999999999999999e125


class _Invalid(Exception):
    """Raised inside the walk; ``path`` collects the keys on the way out (built only on error)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path: list[Any] = []


def _check_string(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("invalid_string", "holds a lone UTF-16 surrogate (not encodable as UTF-8)") from None


def _check_number(value: int | float) -> None:
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise _Invalid("invalid_number", "is an integer of more than 38 digits")
        return
    if not math.isfinite(value):
        raise _Invalid("invalid_number", "is not a finite number")
    magnitude = abs(value)
    if magnitude and not (MIN_FRACTION <= magnitude <= MAX_FRACTION):
        raise _Invalid("invalid_number", "is outside 1E-130 … 9.99E+125")


def _walk(item: Any, depth: int, max_depth: int) -> None:
    """Recursive, but never deeper than ``max_depth`` + 1 frames: it stops where the bound is."""
    kind = type(item)
    if kind is str:
        _check_string(item)
    elif isinstance(item, dict):
        if depth > max_depth:
            raise _Invalid("too_deep", f"is nested deeper than {max_depth} levels")
        for key, child in item.items():
            try:
                if not isinstance(key, str):
                    raise _Invalid("invalid_key", "has a non-string key")
                _check_string(key)
                _walk(child, depth + 1, max_depth)
            except _Invalid as exc:
                exc.path.append(key)
                raise
    elif isinstance(item, list | tuple):
        if depth > max_depth:
            raise _Invalid("too_deep", f"is nested deeper than {max_depth} levels")
        for index, child in enumerate(item):
            try:
                _walk(child, depth + 1, max_depth)
            except _Invalid as exc:
                exc.path.append(index)
                raise
    elif kind is bool or item is None:
        return
    elif isinstance(item, int | float):
        _check_number(item)
    elif isinstance(item, str):  # a str subclass
        _check_string(item)


def _where(root: str, parts: list[Any]) -> str:
    path = root
    for part in reversed(parts):
        path += f"[{part}]" if isinstance(part, int) else f".{str(part)[:60]}" if path else str(part)[:60]
        if len(path) > 200:  # names the field in an error message: keep it readable
            return path[:200] + "…"
    return path


def check_value(value: Any, where: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Depth, numbers and strings of one JSON-like value; BadRequest naming the field.

    ``max_depth`` is small (it bounds the recursion): values nested deeper are refused, not walked.
    """
    try:
        _walk(value, 1, max_depth)
    except _Invalid as exc:
        raise BadRequest(f"{_where(where, exc.path)} {exc.message}", reason=exc.reason) from None


def _check_text(text: str, where: str) -> None:
    try:
        _check_string(text)
    except _Invalid as exc:
        raise BadRequest(f"{where} {exc.message}", reason=exc.reason) from None


def detail_bytes(detail: dict[str, Any]) -> int:
    """UTF-8 size of a bus entry's Detail, serialised exactly as ``huiliu.bus`` sends it."""
    return len(json.dumps(detail, separators=(",", ":"), default=str, ensure_ascii=False).encode())


def check_event(event: CanonicalEvent, position: str = "") -> dict[str, Any]:
    """Raise a 400/413 naming ``position`` (``batch[3]``) and the field; return the bus detail."""
    prefix = f"{position}." if position else ""
    for name in ("traits", "properties", "context"):
        check_value(getattr(event, name), prefix + name)
    for name in ("message_id", "event", "correlation_id"):
        text = getattr(event, name)
        if text:
            _check_text(text, prefix + name)
    for index, ident in enumerate(event.identifiers):
        _check_text(ident.value, f"{prefix}identifiers[{index}]")
    if event.source.account:
        _check_text(event.source.account, prefix + "source.account")
    detail = event.model_dump(mode="json")
    size = detail_bytes(detail) + (RAW_REF_RESERVE if event.raw_ref is None else 0)
    if size > MAX_EVENT_BYTES:
        where = position or "the event"
        raise PayloadTooLarge(
            f"{where} is {size} bytes as a canonical event; the limit is {MAX_EVENT_BYTES} (UTF-8)",
            reason="event_too_large",
        )
    return detail
