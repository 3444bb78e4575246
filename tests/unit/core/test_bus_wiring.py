"""The bus as template.yaml wires it: every detail type reaches exactly the queues that consume it
(on the wire huiliu.bus routes it to), the topic may deliver into those queues, and only the
functions that publish may publish to the topic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huiliu.bus import SNS_DETAIL_TYPES, OutgoingEvent
from huiliu_infra import cfn
from huiliu_infra.local.provision import TEMPLATE

from benchmarks.meter import queues_reached, template_subscriptions

PROFILE = {"profile_id": "p", "version": 2}


def _changed(**extra: Any) -> OutgoingEvent:
    detail = {"event_id": "e", "tenant_id": "t", "profile_id": "p", "profile": PROFILE, **extra}
    return OutgoingEvent("huiliu.identity", "profile.changed", detail)


# (event, the queues it must reach) — the table in docs/contracts.md
WIRING: list[tuple[str, OutgoingEvent, set[str]]] = [
    ("browsing", _changed(changed={"computed": {"event_count": 3}}), {"SegmentsQueue", "JourneysQueue"}),
    (
        "new person",
        _changed(created=True, changed={"traits": {"name": "Li"}}),
        {"SegmentsQueue", "JourneysQueue", "NotifyQueue"},
    ),
    (
        "consent",
        _changed(changed={"consent": {"email": False}}),
        {"SegmentsQueue", "JourneysQueue", "NotifyQueue"},
    ),
    (
        "order",
        _changed(event={"message_id": "m", "type": "track", "name": "Order Paid", "timestamp": "t"}),
        {"SegmentsQueue", "JourneysQueue", "ReportsQueue"},
    ),
    (
        "merged",
        OutgoingEvent("huiliu.identity", "profile.merged", {}),
        {"SegmentsQueue", "JourneysQueue", "NotifyQueue"},
    ),
    ("unmerged", OutgoingEvent("huiliu.identity", "profile.unmerged", {}), {"SegmentsQueue"}),
    (
        "erased",
        OutgoingEvent("huiliu.identity", "profile.erased", {}),
        {"SegmentsQueue", "JourneysQueue", "NotifyQueue"},
    ),
    ("entered", OutgoingEvent("huiliu.segments", "segment.entered", {}), {"JourneysQueue", "ReportsQueue"}),
    ("exited", OutgoingEvent("huiliu.segments", "segment.exited", {}), {"JourneysQueue", "ReportsQueue"}),
    *[
        (
            f"requested {channel}",
            OutgoingEvent("huiliu.journeys", "notification.requested", {"channel": channel}),
            {f"Notify{channel.capitalize()}Queue", "ReportsQueue"},
        )
        for channel in ("email", "sms", "wechat", "webhook")
    ],
    ("sent", OutgoingEvent("huiliu.notify", "notification.sent", {}), {"ReportsQueue"}),
    ("suppressed", OutgoingEvent("huiliu.notify", "notification.suppressed", {}), {"ReportsQueue"}),
    ("failed", OutgoingEvent("huiliu.notify", "notification.failed", {}), {"ReportsQueue"}),
    # by prefix: reports receives a deferral and does not count it
    ("deferred", OutgoingEvent("huiliu.notify", "notification.deferred", {}), {"ReportsQueue"}),
    ("replay asked", OutgoingEvent("huiliu.segments", "profiles.replay_requested", {}), {"IdentityQueue"}),
    ("replay done", OutgoingEvent("huiliu.identity", "profiles.replay_completed", {}), {"SegmentsQueue"}),
    ("tag action", OutgoingEvent("huiliu.journeys", "event.ingested", {}), {"IdentityQueue", "ReportsQueue"}),
    ("archive", OutgoingEvent("huiliu.identity", "archive.erase_requested", {}), {"ArchiveEraseQueue"}),
    ("conflict", OutgoingEvent("huiliu.identity", "identity.conflict", {}), set()),
    *[
        (kind, OutgoingEvent("huiliu.feedback", f"notification.{kind}", {}), {"ReportsQueue"})
        for kind in ("delivered", "opened", "clicked", "bounced", "complained")
    ],
]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn.load_template(TEMPLATE)


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")


@pytest.mark.parametrize(("name", "event", "expected"), WIRING, ids=[w[0] for w in WIRING])
def test_each_event_reaches_exactly_its_consumers(
    template: dict[str, Any], name: str, event: OutgoingEvent, expected: set[str]
) -> None:
    assert queues_reached(template, event) == expected


def test_every_sns_detail_type_is_in_the_wiring_table() -> None:
    assert {e.detail_type for _n, e, _q in WIRING} >= SNS_DETAIL_TYPES


def test_the_topic_may_deliver_into_every_queue_it_is_subscribed_by(template: dict[str, Any]) -> None:
    subscribed = {s.queue for s in template_subscriptions(template)}
    resources = template["Resources"]
    allowed: set[str] = set()
    for res in resources.values():
        if res["Type"] != "AWS::SQS::QueuePolicy":
            continue
        for st in res["Properties"]["PolicyDocument"]["Statement"]:
            if st.get("Principal") == {"Service": "sns.amazonaws.com"}:
                assert st["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": "BusTopic"}
                allowed |= {r["Fn::GetAtt"][0] for r in st["Resource"]}
    assert subscribed <= allowed
    # and every subscribed queue is one a function consumes (no delivery into a dead end)
    consumed = {
        res["Properties"]["Events"][e]["Properties"]["Queue"]["Fn::GetAtt"][0]
        for res in resources.values()
        if res["Type"] == "AWS::Serverless::Function"
        for e in res["Properties"].get("Events", {})
        if res["Properties"]["Events"][e]["Type"] == "SQS"
    }
    assert subscribed <= consumed
    for res in resources.values():
        if res["Type"] == "AWS::SNS::Subscription":
            assert res["Properties"]["RawMessageDelivery"] is True  # consumers read the envelope


def test_only_the_functions_that_publish_may_publish_to_the_topic(translated: dict[str, Any]) -> None:
    publishers = set()
    for logical, res in translated["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if "sns:Publish" in actions and "BusTopic" in json.dumps(st["Resource"]):
                    publishers.add(logical.removesuffix("Role"))
    assert publishers == {
        "IdentityFunction",  # profile.*
        "SegmentsFunction",  # segment.entered / exited
        "SegmentSweepFunction",  # time-based transitions
        "JourneysFunction",  # notification.requested
        "JourneyTickFunction",  # notification.requested after a wait
        "NotifyFunction",  # outcomes, fallback requests
        "AdminFunction",  # transactional requests, erase, unmerge
        "FeedbackFunction",  # delivery outcomes (SES events)
    }


def test_the_topic_is_encrypted(template: dict[str, Any]) -> None:
    assert template["Resources"]["BusTopic"]["Properties"]["KmsMasterKeyId"]
