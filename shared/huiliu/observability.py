"""Powertools Logger / Tracer / Metrics, set up once for every function.

``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml) names the service; the metrics
namespace is ``Huiliu``. The correlation id starts at the webhook (API Gateway request id, or the
caller's ``X-Correlation-Id``) and travels inside every bus event, so one grep follows one event
through ingest → identity → segments → journeys → notify.

Tracing: Lambda's active tracing records every invocation without any SDK. The X-Ray SDK (which
Powertools Tracer drives) adds subsegments per AWS call but costs ~200 ms of cold start: importing
it builds an X-Ray sampling client. It is therefore opt-in per stage (template parameter
``XRaySdkTracing``, i.e. ``POWERTOOLS_TRACE_DISABLED=false``); when off, the Tracer gets a no-op
provider and the SDK is never imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Huiliu")


class _NoopSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class NoopTracingProvider(BaseProvider):
    """Tracer provider used when SDK tracing is off: same API, no X-Ray import, no work."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoopSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> Any:
        yield _NoopSegment()

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def patch(self, modules: Sequence[str]) -> None: ...
    def patch_all(self) -> None: ...


def sdk_tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
    }
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not disabled


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time of writing. In Lambda that is always the
    same stream; the local runtime and tests swap it (capture, redirect), and a logger bound to a
    stream that was closed since would fail every handler that logs."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger = Logger(stream=_CurrentStdout())  # type: ignore[arg-type]
tracer = (
    Tracer()
    if sdk_tracing_enabled()
    else Tracer(disabled=True, auto_patch=False, provider=NoopTracingProvider())
)
metrics = Metrics()

CORRELATION_HEADER = "x-correlation-id"


def bind_correlation(correlation_id: str | None, **keys: Any) -> None:
    """Attach the event's correlation id (and e.g. tenant) to every following log line."""
    if correlation_id:
        logger.set_correlation_id(correlation_id)
    if keys:
        logger.append_keys(**{k: v for k, v in keys.items() if v is not None})


def bind_http_correlation(event: dict[str, Any]) -> None:
    """An API Gateway request's correlation id: the caller's ``X-Correlation-Id``, else the request id."""
    headers = event.get("headers") or {}
    request_id = (event.get("requestContext") or {}).get("requestId")
    bind_correlation(headers.get(CORRELATION_HEADER) or request_id)
