"""The deployed wiring, end to end, through the local runtime: HTTP → ingest → bus → queue →
identity → table; failures → DLQ; schedules from a movable clock."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from huiliu import aws

from tests.integration.helpers import eventually, http, identity_item, segment_call

pytestmark = pytest.mark.integration


def _queue_messages(runtime: Any, logical: str) -> list[dict[str, Any]]:
    url = runtime.deployment.queues[logical].url
    return (
        aws.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )


def test_track_call_over_http_ends_as_a_profile_in_the_identity_table(local_runtime: Any) -> None:
    # Given the demo tenant's Segment write key and a user nobody has seen
    write_key = local_runtime.tenant["connectors"]["segment"]["write_key"]
    user_id = f"u-{uuid.uuid4().hex[:8]}"

    # When a Segment track call is posted to the local HTTP API
    status, body = segment_call(
        local_runtime.api_url,
        write_key,
        "track",
        {
            "userId": user_id,
            "event": "Signed Up",
            "properties": {"plan": "pro"},
            "messageId": uuid.uuid4().hex,
        },
    )

    # Then it is accepted, and after HTTP → bus → queue → identity the profile is in the table
    assert status == 200
    assert body == {"success": True}
    claim = eventually(lambda: identity_item(local_runtime, f"T#demo#ID#user_id#{user_id}", "CLAIM"))
    profile = eventually(lambda: identity_item(local_runtime, f"T#demo#P#{claim['profile_id']}", "PROFILE"))
    assert {"type": "user_id", "value": user_id} in profile["identifiers"]
    assert eventually(lambda: local_runtime.stats.summary().get("IdentityFunction", {}).get("invocations"))


def test_identify_with_traits_lands_on_the_same_profile_as_the_track_call(local_runtime: Any) -> None:
    # Given a user who has been tracked once
    write_key = local_runtime.tenant["connectors"]["segment"]["write_key"]
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    segment_call(local_runtime.api_url, write_key, "track", {"userId": user_id, "event": "Viewed"})
    first = eventually(lambda: identity_item(local_runtime, f"T#demo#ID#user_id#{user_id}", "CLAIM"))

    # When the same user is identified with an email
    status, _ = segment_call(
        local_runtime.api_url,
        write_key,
        "identify",
        {"userId": user_id, "traits": {"email": "Mei.Lin@Example.COM", "name": "Mei"}},
    )

    # Then the normalised email is claimed by that same profile
    assert status == 200
    email_claim = eventually(
        lambda: identity_item(local_runtime, "T#demo#ID#email#mei.lin@example.com", "CLAIM")
    )
    assert email_claim["profile_id"] == first["profile_id"]


def test_a_poison_message_ends_in_the_dlq_while_its_batch_mates_are_processed(local_runtime: Any) -> None:
    # Given a message no identity handler can parse, queued together with a good event
    sqs = aws.client("sqs")
    identity_queue = local_runtime.deployment.queues["IdentityQueue"]
    poison_marker = f"poison-{uuid.uuid4().hex[:8]}"
    sqs.send_message(
        QueueUrl=identity_queue.url, MessageBody=json.dumps({"not": "an event", "id": poison_marker})
    )
    write_key = local_runtime.tenant["connectors"]["segment"]["write_key"]
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    segment_call(local_runtime.api_url, write_key, "track", {"userId": user_id, "event": "Viewed"})

    # When the poller has retried it maxReceiveCount times
    assert identity_queue.max_receive_count == 5
    from huiliu_infra import cli_dlq

    dlq_url = local_runtime.deployment.queues["IdentityDLQ"].url
    dead = eventually(
        lambda: [x for x in cli_dlq.peek(sqs, dlq_url, 50) if poison_marker in x.body],
        timeout=40,
    )

    # Then it sits in the DLQ with the reason it failed, and the good event still made its profile
    assert len(dead) == 1
    (letter,) = dead
    assert letter.reason.startswith("BadRecord: not a valid bus event")
    assert (letter.stage, letter.attempts) == ("identity", "5")
    assert eventually(lambda: identity_item(local_runtime, f"T#demo#ID#user_id#{user_id}", "CLAIM"))
    identity = local_runtime.stats.summary()["IdentityFunction"]
    # (a batch in which every record fails is a failed invocation, Powertools' default; the fifth
    # attempt succeeds in moving the record to the DLQ itself)
    assert identity["record_failures"] + identity["errors"] >= 4


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        ("/v1/track", b"{not json", "good-key", 400, "invalid_json"),
        ("/v1/track", b'{"userId":"u","event":"E"}', "wrong-key", 401, "invalid_write_key"),
        ("/v1/hooks/shopify/no-such-tenant", b"{}", None, 404, "not_found"),
        ("/v1/hooks/no-such-connector/demo", b"{}", None, 404, "not_found"),
        (
            "/v1/track",
            b'{"userId":"u","event":"' + b"x" * 600_000 + b'"}',
            "good-key",
            413,
            "payload_too_large",
        ),
    ],
    ids=["malformed-json", "wrong-write-key", "unknown-tenant", "unknown-connector", "oversized"],
)
def test_bad_requests_get_a_4xx_with_a_machine_readable_reason(
    local_runtime: Any, path: str, body: bytes, headers: str | None, status: int, code: str
) -> None:
    # Given a request that is wrong in one way
    import base64

    sent_headers = {"Content-Type": "application/json"}
    if headers:
        key = local_runtime.tenant["connectors"]["segment"]["write_key"] if headers == "good-key" else "nope"
        sent_headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    # When it is posted
    got_status, _, raw = http("POST", local_runtime.api_url + path, body, sent_headers)

    # Then the answer is the expected 4xx with a reason code, never a 500
    assert got_status == status
    payload = json.loads(raw)
    assert payload["success"] is False
    assert payload["code"] == code


def test_unknown_tenant_and_unknown_connector_answer_identically(local_runtime: Any) -> None:
    # Given one request to a tenant that does not exist and one to a connector that does not exist
    a = http(
        "POST",
        local_runtime.api_url + "/v1/hooks/shopify/ghost-shop",
        b"{}",
        {"Content-Type": "application/json"},
    )
    b = http(
        "POST", local_runtime.api_url + "/v1/hooks/nothing/demo", b"{}", {"Content-Type": "application/json"}
    )

    # Then nothing in the answers tells which tenants exist
    assert a[0] == b[0] == 404
    assert a[2] == b[2]


def test_moving_the_clock_fires_the_schedules_once_per_step(local_runtime: Any) -> None:
    # Given the invocation counts once every schedule due in real time has fired
    local_runtime.fire_due()
    before = local_runtime.stats.summary()
    ticks_before = before.get("JourneyTickFunction", {}).get("invocations", 0)
    sweeps_before = before.get("SegmentSweepFunction", {}).get("invocations", 0)

    # When three hours pass in one-hour steps
    local_runtime.advance(timedelta(hours=3), step=timedelta(hours=1))

    # Then the minute tick and the 15-minute sweep each ran once per step, without errors
    after = local_runtime.stats.summary()
    assert after["JourneyTickFunction"]["invocations"] - ticks_before == 3
    assert after["SegmentSweepFunction"]["invocations"] - sweeps_before == 3
    assert after["JourneyTickFunction"]["errors"] == 0


def test_control_surface_reports_the_tenant_and_moves_time(local_runtime: Any) -> None:
    # When an external client asks for the tenant and moves time by a day
    status, _, raw = http("GET", local_runtime.api_url + "/_huiliu/tenant")
    tenant = json.loads(raw)
    status2, _, raw2 = http(
        "POST", local_runtime.api_url + "/_huiliu/advance", json.dumps({"by": "1d", "step": "12h"}).encode()
    )

    # Then it gets every connector's local settings, and the clock moved
    assert status == 200
    assert {"segment", "youzan", "wechat", "shopify", "signed-json"} <= set(tenant["connectors"])
    assert tenant["connectors"]["wechat"]["token"]
    assert status2 == 200
    assert json.loads(raw2)["offset_seconds"] >= 86400
