"""Segment HTTP API through the ingest Lambda, with moto behind it."""

from __future__ import annotations

import gzip
import json
from types import ModuleType

from tests.functions.ingest.ingest_helpers import TENANT, LambdaContext, Stack, basic, http_event


def identify_body(message_id: str = "m-1") -> str:
    return json.dumps(
        {
            "userId": "u-42",
            "messageId": message_id,
            "traits": {"email": "Ada@Example.com", "phone": "138 0013 8000", "name": "Ada"},
            "timestamp": "2026-01-02T03:04:05Z",
        }
    )


def test_given_a_valid_identify_when_posted_then_200_success_and_one_event_on_the_bus(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_event(
        "/v1/identify", identify_body(), headers={"authorization": basic(stack.secrets.segment.write_key)}
    )

    response = ingest_app.handler(event, lambda_context)

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"success": True}
    [bus_event] = stack.bus_events()
    assert bus_event["source"] == "huiliu.ingest"
    assert bus_event["detail-type"] == "event.ingested"
    detail = bus_event["detail"]
    assert detail["tenant_id"] == TENANT
    assert detail["type"] == "identify"
    assert {(i["type"], i["value"]) for i in detail["identifiers"]} == {
        ("user_id", "u-42"),
        ("email", "ada@example.com"),
        ("phone", "+8613800138000"),
    }
    assert detail["correlation_id"] == "req-1"
    assert detail["raw_ref"].startswith(f"raw/{TENANT}/segment/")


def test_given_a_track_with_write_key_in_body_when_posted_then_the_event_is_published(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    body = json.dumps(
        {
            "writeKey": stack.secrets.segment.write_key,
            "anonymousId": "a-1",
            "event": "Signed Up",
            "messageId": "t1",
        }
    )

    response = ingest_app.handler(http_event("/v1/track", body), lambda_context)

    assert response["statusCode"] == 200
    [bus_event] = stack.bus_events()
    assert bus_event["detail"]["event"] == "Signed Up"
    assert bus_event["detail"]["type"] == "track"


def test_given_the_same_message_twice_when_posted_then_identity_applies_it_once(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    headers = {"authorization": basic(stack.secrets.segment.write_key)}

    first = ingest_app.handler(http_event("/v1/identify", identify_body(), headers=headers), lambda_context)
    second = ingest_app.handler(http_event("/v1/identify", identify_body(), headers=headers), lambda_context)

    assert first["statusCode"] == second["statusCode"] == 200
    assert stack.identity_outcomes() == ["processed", "duplicate"]


def test_given_an_unknown_write_key_when_posted_then_401_with_a_code(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_event("/v1/identify", identify_body(), headers={"authorization": basic("nope")})

    response = ingest_app.handler(event, lambda_context)

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["code"] == "invalid_write_key"
    assert stack.bus_events() == []


def test_given_a_gzipped_batch_when_posted_then_every_event_is_published(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    batch = [{"type": "track", "userId": f"u{i}", "event": "Viewed", "messageId": f"b{i}"} for i in range(25)]
    body = gzip.compress(json.dumps({"batch": batch, "sentAt": "2026-01-01T00:00:00Z"}).encode())
    headers = {"authorization": basic(stack.secrets.segment.write_key), "content-encoding": "gzip"}

    response = ingest_app.handler(http_event("/v1/batch", body, headers=headers), lambda_context)

    assert response["statusCode"] == 200
    assert sorted(e["detail"]["message_id"] for e in stack.bus_events()) == sorted(f"b{i}" for i in range(25))


def test_given_an_accepted_call_when_posted_then_the_raw_request_is_archived_without_credentials(
    stack: Stack, ingest_app: ModuleType, lambda_context: LambdaContext
) -> None:
    headers = {"authorization": basic(stack.secrets.segment.write_key)}
    ingest_app.handler(http_event("/v1/identify", identify_body(), headers=headers), lambda_context)

    [record] = stack.raw_records().values()
    assert "authorization" not in record["headers"]
    assert record["path"] == "/v1/identify"
    assert record["method"] == "POST"
    assert record["received_at"]
