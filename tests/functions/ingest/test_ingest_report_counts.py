"""Ingest counts what it accepted and refused, per tenant, day and connector, for the report: the
counts travel as ``ingest.counted`` messages on the reports queue (no bus event per webhook, no table
scan) and end as the report's ingestion rows, refusals by reason."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.functions.ingest.ingest_helpers import LambdaContext, Stack, http_event
from tests.functions.ingest.test_ingest_webhooks import youzan_event
from tests.unit.connectors.connector_helpers import sample_json


@pytest.fixture
def reports_queue(stack: Stack, ingest_app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> str:
    from huiliu import aws
    from huiliu.settings import get_settings

    url = aws.client("sqs").create_queue(QueueName="reports")["QueueUrl"]
    monkeypatch.setenv("REPORTS_QUEUE_URL", url)
    get_settings.cache_clear()
    return str(url)


def _drain(url: str) -> list[str]:
    from huiliu import aws

    sqs, bodies = aws.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _report(bodies: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from huiliu import aws
    from huiliu.reports.document import build
    from huiliu.reports.repository import ReportsRepository
    from huiliu.reports.stage import ReportsStage

    aws.client("dynamodb").create_table(
        TableName="t-reports",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    stage = ReportsStage(ReportsRepository("t-reports"), now=lambda: 1)
    stage.handle(bodies)
    return build("acme", stage.repo.items("acme"))


def test_accepted_events_and_refusals_by_reason_reach_the_report_per_connector(
    stack: Stack,
    reports_queue: str,
    ingest_app: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = sample_json("youzan", "POINTS.json")
    good = ingest_app.handler(youzan_event(stack, points), lambda_context)
    forged = youzan_event(stack, {**points, "msg_id": "m-forged"})
    forged["headers"]["event-sign"] = "0" * 32
    refused = ingest_app.handler(forged, lambda_context)
    too_big = ingest_app.handler(http_event("/v1/hooks/youzan/acme", b"x" * (600 * 1024)), lambda_context)
    ghost = ingest_app.handler(http_event("/v1/hooks/youzan/ghost", b"{}"), lambda_context)
    assert [r["statusCode"] for r in (good, refused, too_big, ghost)] == [200, 404, 413, 404]

    bodies = _drain(reports_queue)
    messages = [json.loads(b) for b in bodies]
    assert {m["detail-type"] for m in messages} == {"ingest.counted"}
    assert {m["detail"]["tenant_id"] for m in messages} == {"acme"}  # the unknown tenant is not counted

    (row,) = _report(bodies, monkeypatch).ingestion
    queued = len(stack.bus_events())  # the events ingest handed to identity
    assert (row.connector, row.ingested, row.rejected) == ("youzan", queued, 2)
    assert row.rejected_by_reason == {"bad_signature": 1, "payload_too_large": 1}


def test_accepted_counts_are_held_between_flushes_and_a_refusal_sends_them_at_once(
    stack: Stack, reports_queue: str, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    points = sample_json("youzan", "POINTS.json")
    ingest_app.handler(youzan_event(stack, points), lambda_context)  # the container's first request
    (first,) = [json.loads(b) for b in _drain(reports_queue)]
    per_webhook = first["detail"]["ingested"]
    assert per_webhook >= 1
    for n in range(3):  # within 10 s of that flush: kept in memory
        ingest_app.handler(youzan_event(stack, {**points, "msg_id": f"m-{n}", "id": f"P{n}"}), lambda_context)
    assert _drain(reports_queue) == []
    forged = youzan_event(stack, points)
    forged["headers"]["event-sign"] = "0" * 32
    ingest_app.handler(forged, lambda_context)

    (message,) = [json.loads(b) for b in _drain(reports_queue)]
    assert message["detail"]["ingested"] == 3 * per_webhook
    assert message["detail"]["rejected"] == {"bad_signature": 1}
