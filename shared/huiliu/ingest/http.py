"""API Gateway HTTP API (payload v2) ↔ the ingest pipeline: the adapter ingest's handler serves."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from huiliu.connectors.base import HttpRequest

if TYPE_CHECKING:
    from huiliu.ingest.pipeline import IngestPipeline


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


class ApiGatewayIngest:
    """The ingest stage's HTTP service (:func:`huiliu.stage.http_handler`): event → pipeline → reply."""

    def __init__(self, pipeline: IngestPipeline) -> None:
        self.pipeline = pipeline

    def respond(self, event: dict[str, Any]) -> dict[str, Any]:
        reply = self.pipeline.handle(request_from_event(event))
        return {
            "statusCode": reply.status,
            "headers": {"content-type": reply.content_type},
            "body": reply.body,
            "isBase64Encoded": False,
        }


def build_http_ingest() -> ApiGatewayIngest:
    from huiliu.ingest.pipeline import build_pipeline

    return ApiGatewayIngest(build_pipeline())
