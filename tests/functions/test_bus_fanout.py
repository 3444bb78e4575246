"""The hot fan-out on the bus topic, end to end on moto with the template provisioned: identity's
real handler publishes profile.changed through huiliu.bus; SNS delivers it raw to the queues whose
filter policies match — notify's contact queue only when the contact changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huiliu.models import CanonicalEvent
from huiliu.stage import parse_record_body

from tests.lambda_support import LambdaContext, load_function_fresh, sqs_record
from tests.unit.identity.identity_helpers import TENANT, ingested_body, make_event

ROOT = Path(__file__).resolve().parents[2]
_CTX = LambdaContext(function_name="identity", memory_limit_in_mb=512)
FANOUT_QUEUES = ("SegmentsQueue", "JourneysQueue", "NotifyQueue", "ReportsQueue")


def _record(event: CanonicalEvent, n: int) -> dict[str, Any]:
    return sqs_record(ingested_body(event, f"sqs-{n}"), f"m-{n}", queue="identity", attempt=1)


def _received(deployed: Any) -> dict[str, list[tuple[str, Any]]]:
    """(detail-type, typed event) each fan-out queue holds now, as the stage runner parses them."""
    from huiliu import aws

    sqs = aws.client("sqs")
    out: dict[str, list[tuple[str, Any]]] = {}
    for logical in FANOUT_QUEUES:
        url = deployed.queues[logical].url
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        out[logical] = [parse_record_body(m["Body"]) for m in got]
        if got:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )
    return out


def _types(received: dict[str, list[tuple[str, Any]]]) -> dict[str, list[str]]:
    return {queue: [t for t, _e in events] for queue, events in received.items()}


def test_profile_changed_reaches_notify_only_when_the_contact_changed(deployed: Any) -> None:
    handler = load_function_fresh("identity", "identity_app_fanout")
    email = ("email", "fanout@example.com")

    # a new person: created, identifiers and traits — every consumer of contacts hears it
    handler.handler({"Records": [_record(make_event(email, traits={"name": "Mei"}), 1)]}, _CTX)
    first = _received(deployed)
    assert _types(first) == {
        "SegmentsQueue": ["profile.changed"],
        "JourneysQueue": ["profile.changed"],
        "NotifyQueue": ["profile.changed"],
        "ReportsQueue": [],
    }
    profile_id = first["NotifyQueue"][0][1].profile_id
    assert first["NotifyQueue"][0][1].profile.identifier("email") == "fanout@example.com"

    # the same person views a product: only computed attributes change — notify is not bothered
    viewed = make_event(email, name="Product Viewed", minutes=5, properties={"product_id": "p1"})
    handler.handler({"Records": [_record(viewed, 2)]}, _CTX)
    second = _types(_received(deployed))
    assert second == {
        "SegmentsQueue": ["profile.changed"],
        "JourneysQueue": ["profile.changed"],
        "NotifyQueue": [],
        "ReportsQueue": [],
    }

    # an order: reports count it (has_order), notify still not
    order = make_event(
        email, name="Order Completed", minutes=10, properties={"order_id": "o1", "revenue": 9.9}
    )
    handler.handler({"Records": [_record(order, 3)]}, _CTX)
    third = _types(_received(deployed))
    assert third["ReportsQueue"] == ["profile.changed"]
    assert third["NotifyQueue"] == []

    # consent withdrawn: the contact changed — notify hears it, with the new consent
    optout = make_event(email, kind="identify", minutes=15, traits={}, context={"consent": {"email": False}})
    handler.handler({"Records": [_record(optout, 4)]}, _CTX)
    fourth = _received(deployed)
    assert [t for t, _e in fourth["NotifyQueue"]] == ["profile.changed"]
    snapshot = fourth["NotifyQueue"][0][1]
    assert snapshot.profile_id == profile_id
    assert snapshot.profile.consent["email"].granted is False
    assert [t for t, _e in fourth["SegmentsQueue"]] == ["profile.changed"]
    assert snapshot.tenant_id == TENANT


def test_control_events_stay_on_eventbridge_and_hot_ones_never_touch_it(deployed: Any) -> None:
    from huiliu import aws
    from huiliu.bus import bus_publisher
    from huiliu.contracts import ReplayCompleted

    completed = ReplayCompleted(
        event_id="r1", tenant_id=TENANT, occurred_at="2026-11-27T00:00:00Z", replay_id="r", requester="seg"
    )
    bus_publisher().publish([completed.outgoing()])
    # delivered by the EventBridge rule (moto delivers rule targets), not by the topic
    got = aws.client("sqs").receive_message(QueueUrl=deployed.queues["SegmentsQueue"].url).get("Messages", [])
    assert [json.loads(m["Body"])["detail-type"] for m in got] == ["profiles.replay_completed"]
