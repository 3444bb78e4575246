"""Ingest Lambda: API Gateway HTTP API (payload v2) → the ingest pipeline → the source's reply.

Routes: ``/v1/hooks/{connector}/{tenant}`` (Youzan, WeChat, Shopify, signed JSON, Segment) and
Segment's ``/v1/{identify,track,page,screen,alias,group,batch}``.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from huiliu.connectors.base import HttpRequest
from huiliu.observability import logger

if TYPE_CHECKING:
    from huiliu.ingest.pipeline import IngestPipeline
    from huiliu.settings import Settings

_built: tuple[Settings, IngestPipeline] | None = None


def pipeline() -> IngestPipeline:
    """The process-wide pipeline, rebuilt when the settings object changes (tests clear it)."""
    global _built
    from huiliu.settings import get_settings

    settings = get_settings()
    if _built is None or _built[0] is not settings:
        from huiliu.ingest.pipeline import build_pipeline

        _built = (settings, build_pipeline(settings))
    return _built[1]


def request_from_event(event: dict[str, Any]) -> HttpRequest:
    """An API Gateway HTTP API v2 event as the connector contract's HttpRequest."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    raw_body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body)
        except (binascii.Error, ValueError):
            body = raw_body.encode("utf-8", "surrogatepass")
    else:
        body = raw_body.encode("utf-8", "surrogatepass")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    return HttpRequest(
        method=(http.get("method") or "POST").upper(),
        path=event.get("rawPath") or http.get("path") or "/",
        headers=headers,
        query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
        body=body,
        request_id=context.get("requestId") or "",
        source_ip=http.get("sourceIp") or "",
    )


def respond(event: dict[str, Any]) -> dict[str, Any]:
    reply = pipeline().handle(request_from_event(event))
    return {
        "statusCode": reply.status,
        "headers": {"content-type": reply.content_type},
        "body": reply.body,
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(clear_state=True)
def _in_lambda(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return respond(event)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (a local runtime may pass no context)."""
    return respond(event) if context is None else _in_lambda(event, context)
