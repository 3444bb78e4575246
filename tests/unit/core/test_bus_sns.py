"""The SNS wire of the bus (huiliu.bus): SnsPublisher on moto, the routing table and attributes,
and the RoutingPublisher that keeps producers on one abstraction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from huiliu.bus import (
    MAX_REQUEST_BYTES,
    ORDER_EVENTS,
    SNS_DETAIL_TYPES,
    MemoryPublisher,
    OutgoingEvent,
    PartialPublishFailed,
    RoutingPublisher,
    SnsPublisher,
    routing_attributes,
    wire_of,
)
from huiliu.contracts import (
    ChangeSet,
    IdentifierRef,
    NotificationRequested,
    ProfileChanged,
    ProfileSnapshot,
    SegmentEntered,
    TriggerEvent,
)
from huiliu.errors import PublishFailed
from huiliu.stage import parse_record_body
from moto import mock_aws

from tests.lambda_support import LambdaContext, sqs_record


@pytest.fixture
def topic() -> Iterator[tuple[Any, Any, str, str]]:
    """A topic with one unfiltered raw SQS subscription: (sns, sqs, topic arn, queue url)."""
    import boto3

    with mock_aws():
        sns = boto3.client("sns", region_name="ap-east-1")
        sqs = boto3.client("sqs", region_name="ap-east-1")
        arn = sns.create_topic(Name="bus")["TopicArn"]
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
        yield sns, sqs, arn, url


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not got:
            return out
        out += got
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )


def _event(i: int, pad: int = 0, detail_type: str = "segment.entered") -> OutgoingEvent:
    entered = SegmentEntered(
        event_id=f"e{i}",
        tenant_id="t",
        occurred_at="2026-11-27T00:00:00Z",
        segment_id="s" + "x" * pad,
        profile_id="p1",
        reason="conditions",
    ).outgoing()
    return OutgoingEvent(entered.source, detail_type, entered.detail)


class _Flaky:
    """The real (moto) client, except that some batch entries fail — transiently or for good —
    or a whole call raises. Records every PublishBatch call's entry ids."""

    def __init__(self, client: Any, *, transient: set[str] = frozenset(), permanent: set[str] = frozenset(),
                 raise_on_call: int | None = None) -> None:  # fmt: skip
        self.client = client
        self.transient = set(transient)
        self.permanent = set(permanent)
        self.raise_on_call = raise_on_call
        self.calls: list[list[str]] = []

    def publish_batch(
        self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        ids = [e["Id"] for e in PublishBatchRequestEntries]
        self.calls.append(ids)
        if self.raise_on_call is not None and len(self.calls) == self.raise_on_call:
            raise ConnectionError("endpoint went away")
        failing = {i for i in ids if i in self.permanent or i in self.transient}
        self.transient -= failing  # a transient failure fails once
        keep = [e for e in PublishBatchRequestEntries if e["Id"] not in failing]
        response = (
            self.client.publish_batch(TopicArn=TopicArn, PublishBatchRequestEntries=keep)
            if keep
            else {"Successful": [], "Failed": []}
        )
        response["Failed"] = [*response.get("Failed", []), *(
            {"Id": i, "Code": "InternalError" if i not in self.permanent else "InvalidParameter",
             "SenderFault": i in self.permanent} for i in sorted(failing)
        )]  # fmt: skip
        return response


def test_batches_of_ten_every_event_delivered_once_as_the_eventbridge_envelope(topic: Any) -> None:
    sns, sqs, arn, url = topic
    events = [_event(i) for i in range(25)]

    calls = SnsPublisher(arn, client=sns).publish(events)

    assert calls == 3  # 10 + 10 + 5
    got = _drain(sqs, url)
    assert sorted(json.loads(m["Body"])["detail"]["event_id"] for m in got) == sorted(
        f"e{i}" for i in range(25)
    )
    detail_type, parsed = parse_record_body(got[0]["Body"])  # what the stage runner reads
    assert detail_type == "segment.entered"
    assert isinstance(parsed, SegmentEntered)
    assert got[0]["MessageAttributes"]["detail_type"]["StringValue"] == "segment.entered"
    assert json.loads(got[0]["Body"])["source"] == "huiliu.segments"


def test_large_events_split_by_request_size_not_only_by_count(topic: Any) -> None:
    sns, sqs, arn, url = topic
    flaky = _Flaky(sns)
    events = [_event(i, pad=100 * 1024) for i in range(5)]  # ~100 KB each: two per 240 KB request

    SnsPublisher(arn, client=flaky).publish(events)

    assert [len(c) for c in flaky.calls] == [2, 2, 1]
    assert all(len(c) * 100 * 1024 < MAX_REQUEST_BYTES for c in flaky.calls)
    assert len(_drain(sqs, url)) == 5


def test_a_transiently_failed_entry_is_retried_alone_and_published_once(topic: Any) -> None:
    sns, sqs, arn, url = topic
    flaky = _Flaky(sns, transient={"3"})

    SnsPublisher(arn, client=flaky).publish([_event(i) for i in range(6)])

    assert flaky.calls == [["0", "1", "2", "3", "4", "5"], ["3"]]
    ids = [json.loads(m["Body"])["detail"]["event_id"] for m in _drain(sqs, url)]
    assert sorted(ids) == [f"e{i}" for i in range(6)]  # nothing twice


def test_entries_that_keep_failing_are_reported_by_index_and_the_rest_published_once(topic: Any) -> None:
    sns, sqs, arn, url = topic
    flaky = _Flaky(sns, permanent={"12"})

    with pytest.raises(PartialPublishFailed) as caught:
        SnsPublisher(arn, client=flaky).publish([_event(i) for i in range(15)])

    assert caught.value.failed == [12]
    assert ["12"] not in flaky.calls  # a sender fault is not retried
    ids = sorted(json.loads(m["Body"])["detail"]["event_id"] for m in _drain(sqs, url))
    assert ids == sorted(f"e{i}" for i in range(15) if i != 12)


def test_a_call_that_raises_after_earlier_batches_reports_exactly_what_is_not_published(topic: Any) -> None:
    sns, sqs, arn, url = topic
    flaky = _Flaky(sns, raise_on_call=2)

    with pytest.raises(PartialPublishFailed) as caught:
        SnsPublisher(arn, client=flaky).publish([_event(i) for i in range(25)])

    assert caught.value.failed == list(range(10, 25))
    assert len(_drain(sqs, url)) == 10


def test_a_first_call_that_raises_propagates_the_error_itself(topic: Any) -> None:
    sns, _sqs, arn, _url = topic
    with pytest.raises(ConnectionError):
        SnsPublisher(arn, client=_Flaky(sns, raise_on_call=1)).publish([_event(1)])


def _changed(changed: ChangeSet, *, created: bool = False, event_name: str | None = None) -> ProfileChanged:
    return ProfileChanged(
        event_id="e1",
        tenant_id="t",
        occurred_at="2026-11-27T00:00:00Z",
        profile_id="p1",
        version=3,
        created=created,
        changed=changed,
        event=TriggerEvent(message_id="m1", type="track", name=event_name, timestamp="2026-11-27T00:00:00Z"),
        profile=ProfileSnapshot(profile_id="p1", version=3),
    )


def _attrs(event: Any) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in routing_attributes(event.outgoing()).items()}


def test_contact_changed_follows_the_change_set_of_the_contract() -> None:
    no = [
        _changed(ChangeSet(computed={"event_count": 4})),
        _changed(ChangeSet(tags_added=["vip"], computed={"order_count": 2}), event_name="Order Completed"),
    ]
    yes = [
        _changed(ChangeSet(), created=True),
        _changed(ChangeSet(traits={"name": "Li"})),
        _changed(ChangeSet(consent={"email": False})),
        _changed(ChangeSet(identifiers_added=[IdentifierRef(type="phone", value="+8613800000000")])),
        _changed(ChangeSet(unmerged="merge-1")),
        _changed(ChangeSet()).model_copy(update={"merged_from": ["p0"]}),
    ]
    assert [_attrs(e)["contact_changed"] for e in no] == ["false", "false"]
    assert [_attrs(e)["contact_changed"] for e in yes] == ["true"] * len(yes)


def test_has_order_marks_profile_changes_an_order_caused() -> None:
    assert _attrs(_changed(ChangeSet(), event_name="Order Completed"))["has_order"] == "true"
    assert _attrs(_changed(ChangeSet(), event_name="Order Paid"))["has_order"] == "true"
    assert _attrs(_changed(ChangeSet(), event_name="Product Viewed"))["has_order"] == "false"
    assert _attrs(_changed(ChangeSet()).model_copy(update={"event": None}))["has_order"] == "false"


def test_the_order_events_are_the_ones_identity_counts_and_reports_count() -> None:
    from huiliu.identity.profile import ORDER_EVENTS as IDENTITY_ORDERS
    from huiliu.reports.counters import ORDER_EVENTS as REPORTED_ORDERS

    assert ORDER_EVENTS == IDENTITY_ORDERS == REPORTED_ORDERS


def test_every_message_names_its_type_and_source_and_send_requests_their_channel() -> None:
    request = NotificationRequested(
        event_id="e9",
        tenant_id="t",
        occurred_at="2026-11-27T00:00:00Z",
        idempotency_key="k",
        profile_id="p1",
        channel="wechat",
        template_id="tpl",
    )
    assert _attrs(request) == {
        "detail_type": "notification.requested",
        "source": "huiliu.journeys",
        "channel": "wechat",
    }
    assert set(_attrs(_changed(ChangeSet()))) == {"detail_type", "source", "contact_changed", "has_order"}


def test_the_routing_table_sends_the_hot_fan_out_to_sns_and_control_events_to_eventbridge() -> None:
    for hot in ("profile.changed", "segment.entered", "notification.requested", "notification.sent"):
        assert wire_of(hot) == "sns"
    for control in (
        "profiles.replay_requested",
        "profiles.replay_completed",
        "archive.erase_requested",
        "identity.conflict",
        "event.ingested",
    ):
        assert wire_of(control) == "eventbridge"
    from huiliu.contracts import CONTRACTS

    assert set(CONTRACTS) >= SNS_DETAIL_TYPES  # only typed contracts take the SNS wire


class _Failing:
    def __init__(self, failed: list[int] | None = None, error: Exception | None = None) -> None:
        self.failed, self.error = failed, error

    def publish(self, events: Any) -> int:
        if self.error:
            raise self.error
        if self.failed:
            raise PartialPublishFailed("some", self.failed)
        return 1


def test_the_routing_publisher_keeps_the_callers_indices_across_wires() -> None:
    events = [_event(0, detail_type="profiles.replay_requested"), _event(1), _event(2), _event(3)]
    eventbridge, sns = MemoryPublisher(), MemoryPublisher()

    calls = RoutingPublisher(eventbridge, sns).publish(events)

    assert calls == 2
    assert [e.detail["event_id"] for e in eventbridge.events] == ["e0"]
    assert [e.detail["event_id"] for e in sns.events] == ["e1", "e2", "e3"]

    with pytest.raises(PartialPublishFailed) as caught:
        RoutingPublisher(MemoryPublisher(), _Failing(failed=[1])).publish(events)
    assert caught.value.failed == [2]  # the SNS group's second event is the caller's third

    with pytest.raises(PartialPublishFailed) as caught:
        RoutingPublisher(_Failing(error=ConnectionError("down")), MemoryPublisher()).publish(events)
    assert caught.value.failed == [0]

    with pytest.raises(ConnectionError):  # nothing published on the only wire used: the error itself
        RoutingPublisher(MemoryPublisher(), _Failing(error=ConnectionError("down"))).publish(events[1:])


def test_an_sns_event_without_a_configured_topic_fails_loudly() -> None:
    with pytest.raises(PublishFailed):
        RoutingPublisher(MemoryPublisher(), None).publish([_event(1)])
    with pytest.raises(PublishFailed):
        SnsPublisher("")


# -- the stage runner publishes a batch's events together ---------------------------------------------
_CTX = LambdaContext(function_name="stage")


class _Echo:
    """A stage service: one segment.entered out per segment.entered in (a fresh id)."""

    accepts = (SegmentEntered,)

    def __init__(self) -> None:
        self.handled: list[str] = []

    def handle(self, event: SegmentEntered) -> list[OutgoingEvent]:
        self.handled.append(event.event_id)
        return [_event(int(event.event_id[1:]) + 100)]


def _sqs_record(i: int) -> dict[str, Any]:
    from huiliu.bus import envelope

    return sqs_record(envelope(_event(i)), f"m{i}", attempt=1)


class _Recording(MemoryPublisher):
    def __init__(self, fail: set[int] | None = None) -> None:
        super().__init__()
        self.fail = fail or set()
        self.batches: list[list[str]] = []

    def publish(self, events: Any) -> int:
        self.batches.append([e.detail["event_id"] for e in events])
        ok = [e for i, e in enumerate(events) if i not in self.fail]
        super().publish(ok)
        if self.fail:
            failed, self.fail = sorted(self.fail), set()  # fails once
            raise PartialPublishFailed("rejected", failed)
        return 1


def test_the_runner_publishes_a_whole_batch_in_one_call_and_fails_only_unpublished_records() -> None:
    from huiliu import stage

    handler = stage.queue_handler("bus-test")
    service, publisher = _Echo(), _Recording(fail={3})
    stage.configure("bus-test", service=service, publisher=publisher)
    records = [_sqs_record(i) for i in range(10)]

    result = handler({"Records": records}, _CTX)

    assert publisher.batches == [[f"e{i + 100}" for i in range(10)]]  # one publish for the batch
    assert result == {"batchItemFailures": [{"itemIdentifier": "m3"}]}  # its event was not published
    # the redelivered record is handled again (not remembered as done) and its event goes out
    again = handler({"Records": [records[3], records[4]]}, _CTX)
    assert again == {"batchItemFailures": []}
    assert publisher.batches[-1] == ["e103"]  # e4 was published: remembered, not handled twice
    assert service.handled.count("e3") == 2
    assert service.handled.count("e4") == 1
    assert sorted(e.detail["event_id"] for e in publisher.events) == [f"e{i + 100}" for i in range(10)]


def test_the_same_event_twice_in_one_batch_is_handled_once() -> None:
    from huiliu import stage

    handler = stage.queue_handler("bus-test-dup")
    service, publisher = _Echo(), _Recording()
    stage.configure("bus-test-dup", service=service, publisher=publisher)

    assert handler({"Records": [_sqs_record(1), _sqs_record(1)]}, _CTX) == {"batchItemFailures": []}
    assert service.handled == ["e1"]
    assert publisher.batches == [["e101"]]
