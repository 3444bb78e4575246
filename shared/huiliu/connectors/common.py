"""Helpers shared by connectors: strict JSON, timestamps, message ids. Pure functions only."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from huiliu.errors import BadRequest, UnsupportedMediaType

JSON_TYPES = frozenset({"application/json", "text/json", "application/vnd.api+json", "text/plain", ""})


# A \uD800-\uDFFF escape: the only way a lone surrogate gets into parsed JSON (raw UTF-8 cannot hold one).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class NumberOverflow(ValueError):
    """A JSON number beyond a double (``1e400``)."""


def _no_constants(value: str) -> Any:
    raise ValueError(f"invalid JSON constant {value}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: beyond a double; json would make it inf (stored as null)
        raise NumberOverflow(text[:40])
    return value


def replace_lone_surrogates(value: Any) -> Any:
    """Lone UTF-16 surrogates (from ``"\\ud800"`` escapes) → U+FFFD, in keys and strings, as Go's and
    JavaScript's JSON decoders do; they cannot be encoded as UTF-8 (nor stored, nor published)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_lone_surrogates(v) for v in value]
    return value


def loads(text: str) -> Any:
    """``json.loads`` with the bounds of :func:`parse_json_bytes` (for JSON nested in a field, like
    Youzan's ``msg``): a number beyond a double raises NumberOverflow (a ValueError); lone
    surrogates become U+FFFD."""
    value = json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    return replace_lone_surrogates(value) if _SURROGATE_ESCAPE_TEXT.search(text) else value


def parse_json_bytes(body: bytes, *, what: str = "body") -> Any:
    """Parse JSON bytes (UTF-8, BOM tolerated); BadRequest(invalid_json) for anything else.

    A number beyond a double (``1e400``) → BadRequest(invalid_number); lone surrogates → U+FFFD.
    """
    try:
        text = body.decode("utf-8-sig")
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    except NumberOverflow as exc:
        raise BadRequest(f"{what} holds a number beyond a double: {exc}", reason="invalid_number") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"{what} is not valid JSON", reason="invalid_json") from exc
    if _SURROGATE_ESCAPE.search(body):
        value = replace_lone_surrogates(value)
    return value


def parse_json_object(body: bytes, *, what: str = "body") -> dict[str, Any]:
    value = parse_json_bytes(body, what=what)
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object", reason="invalid_json")
    return value


def require_json_content_type(content_type: str) -> None:
    if content_type not in JSON_TYPES:
        raise UnsupportedMediaType(f"expected application/json, got {content_type!r}")


def require_json_post(request: Any, what: str) -> None:
    """A JSON POST, or 405 / 415 naming what the source sends (``what``: "Shopify webhooks" …)."""
    if request.method != "POST":
        raise BadRequest(f"{what} are POST", reason="method_not_allowed", status=405)
    require_json_content_type(request.content_type)


def parse_timestamp(value: Any, *, field: str = "timestamp") -> datetime:
    """ISO-8601 string or unix seconds / milliseconds → aware UTC datetime; BadRequest otherwise."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError
            seconds = value / 1000 if abs(value) > 1e11 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit():
                return parse_timestamp(int(text), field=field)
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise BadRequest(f"{field} is not a valid timestamp", reason=f"invalid_{field}") from exc
    raise BadRequest(f"{field} is not a valid timestamp", reason=f"invalid_{field}")


def optional_timestamp(value: Any, *, field: str = "timestamp") -> datetime | None:
    if value is None or value == "":
        return None
    return parse_timestamp(value, field=field)


def digest_id(*parts: object) -> str:
    """A deterministic id from parts (used when a source sends no message id of its own)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def as_text(value: Any, *, field: str, max_length: int = 200, required: bool = True) -> str | None:
    """A scalar id field as text (numbers accepted); BadRequest when missing or not a scalar."""
    if value is None or value == "":
        if required:
            raise BadRequest(f"{field} is required", reason=f"missing_{field}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"{field} must be a string", reason=f"invalid_{field}")
    text = str(value)
    if len(text) > max_length:
        raise BadRequest(f"{field} is too long", reason=f"invalid_{field}")
    return text


def as_dict(value: Any, *, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be an object", reason=f"invalid_{field}")
    return value


def money(value: Any) -> float | None:
    """A price as float (sources send strings like "12.30", or cents in ints where noted)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):  # "1e400" / "Infinity": an amount, not text to ignore (was 0)
        raise BadRequest(f"amount {str(value)[:40]!r} is not a finite number", reason="invalid_amount")
    return number
