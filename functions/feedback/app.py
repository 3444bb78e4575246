"""Feedback function: SES events (FeedbackQueue) → suppression list and canonical events back in;
``GET/POST /v1/unsubscribe/{tenant}?t=…`` → the signed one-click unsubscribe (RFC 8058).

GET only shows a confirmation form (mail scanners follow links); POST unsubscribes.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from huiliu.observability import CORRELATION_HEADER, bind_correlation, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

processor = BatchProcessor(event_type=EventType.SQS)
app = APIGatewayHttpResolver()
_deps: dict[str, Any] = {}


def configure(service: Any | None = None, publisher: Any | None = None, key: bytes | None = None) -> None:
    """Inject a FeedbackService, a publisher and the unsubscribe key (tests, local runtime)."""
    _deps.clear()
    for name, value in (("service", service), ("publisher", publisher), ("key", key)):
        if value is not None:
            _deps[name] = value


def _service() -> Any:
    if "service" not in _deps:
        from huiliu.clock import utcnow
        from huiliu.notify.feedback import FeedbackService
        from huiliu.notify.wiring import build_repository

        _deps["service"] = FeedbackService(build_repository(), utcnow)
    return _deps["service"]


def _publish(events: list[Any]) -> None:
    if not events:
        return
    if "publisher" not in _deps:
        from huiliu.bus import bus_publisher

        _deps["publisher"] = bus_publisher()
    _deps["publisher"].publish(events)


def _key() -> bytes:
    if "key" not in _deps:
        from huiliu.notify.unsubscribe import signing_key
        from huiliu.settings import get_settings

        _deps["key"] = signing_key(get_settings().hash_salt)
    return _deps["key"]


def record_handler(record: SQSRecord) -> None:
    envelope = json.loads(record.body)
    out = _service().handle_ses(envelope)
    _publish(out)
    metrics.add_metric(name="feedback_events", unit="Count", value=len(out))


def _page(status: int, title: str, body: str) -> Response:
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=text)


def _claim(tenant: str, token: str | None) -> Any:
    from huiliu.notify.unsubscribe import read_token

    claim = read_token(_key(), token or "")
    return claim if claim is not None and claim.tenant_id == tenant else None


@app.get("/v1/unsubscribe/<tenant>")
def confirm(tenant: str) -> Response:
    token = app.current_event.get_query_string_value("t")
    if _claim(tenant, token) is None:
        return _page(400, "Invalid link", "<p>This unsubscribe link is not valid.</p>")
    form = (
        f"<form method='post' action='?t={html.escape(token or '', quote=True)}'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe / 退订</button></form>"
    )
    return _page(200, "Unsubscribe", form)


@app.post("/v1/unsubscribe/<tenant>")
def unsubscribe(tenant: str) -> Response:
    token = app.current_event.get_query_string_value("t")
    if not token and app.current_event.body:
        posted = parse_qs(app.current_event.decoded_body).get("t")
        token = posted[0] if posted else None
    claim = _claim(tenant, token)
    if claim is None:
        return _page(400, "Invalid link", "<p>This unsubscribe link is not valid.</p>")
    bind_correlation(app.current_event.headers.get(CORRELATION_HEADER), tenant_id=tenant)
    _publish(_service().unsubscribe(claim))
    metrics.add_metric(name="unsubscribes", unit="Count", value=1)
    logger.info("unsubscribed", extra={"channel": claim.channel, "profile_id": claim.profile_id})
    return _page(200, "Unsubscribed", "<p>You will receive no more marketing messages. 已退订。</p>")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    return app.resolve(event, context)
