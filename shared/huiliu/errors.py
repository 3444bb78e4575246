"""Domain exceptions, mapped to HTTP responses or batch-item failures in one place each."""

from __future__ import annotations


class HuiliuError(Exception):
    """Base class; ``reason`` is a stable machine-readable code."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str, *, reason: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        if status:
            self.status = status


class BadRequest(HuiliuError):
    status = 400
    reason = "bad_request"


class Refused(BadRequest):
    """A definition (segment, journey, template …) refused by its stage's validator; the admin API
    answers 400 with every problem as ``problems: [{path, reason}]``."""

    reason = "invalid_definition"

    def __init__(self, message: str, problems: list[dict[str, str]], *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.problems = list(problems)


class Unauthorized(HuiliuError):
    status = 401
    reason = "unauthorized"


class NotFound(HuiliuError):
    status = 404
    reason = "not_found"


class PayloadTooLarge(HuiliuError):
    status = 413
    reason = "payload_too_large"


class UnsupportedMediaType(HuiliuError):
    status = 415
    reason = "unsupported_media_type"


class Conflict(HuiliuError):
    status = 409
    reason = "conflict"


class ConditionFailed(Exception):
    """A DynamoDB conditional write lost a race (callers retry or treat as a duplicate)."""


class PublishFailed(Exception):
    """EventBridge rejected one or more entries."""
