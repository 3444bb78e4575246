"""The bus: one publisher abstraction over two wires, and the table that decides between them.

Producers publish :class:`OutgoingEvent` s through :func:`bus_publisher` (a :class:`RoutingPublisher`);
the **routing table** :data:`SNS_DETAIL_TYPES` decides each detail type's wire:

* the hot fan-out (``profile.*``, ``segment.*``, ``notification.requested`` and notify's outcomes)
  goes to one SNS topic (:class:`SnsPublisher`, PublishBatch of ≤ 10 — $0.50 per million requests
  per 64 KB, deliveries to SQS free), each consuming queue subscribed with a filter policy on the
  message attributes :func:`routing_attributes` computes — here and nowhere else;
* control-plane, low-volume events (replay, erase, conflicts, canonical events that journeys and
  feedback feed back to identity) stay on the EventBridge bus (:class:`EventBridgePublisher`,
  PutEvents of ≤ 10 — $1.00 per million entries), delivered by the rules in template.yaml.

Either way the consumer's SQS message body is the same EventBridge envelope (``detail-type``,
``source``, ``detail`` …; SNS subscriptions use raw message delivery), so consumers cannot tell
the wires apart. Entries a service rejects are retried alone, a few times; entries that still fail
raise :class:`PartialPublishFailed` naming them, so the caller can keep what was delivered and
release only what was not (no event is published twice by a retry). docs/contracts.md lists the
wire of every detail type; docs/cost.md what each costs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from huiliu.errors import PublishFailed

MAX_ENTRIES = 10
# Tries per entry (the first one included) before an entry counts as failed.
MAX_TRIES = 3
RETRY_DELAY_SECONDS = 0.05
# PutEvents caps a request at 256 KB in total; stay below with room for the envelope.
MAX_REQUEST_BYTES = 240 * 1024


@dataclass(frozen=True)
class OutgoingEvent:
    source: str
    detail_type: str
    detail: dict[str, Any]


class PartialPublishFailed(PublishFailed):
    """Some events were not published; ``failed`` holds their indices in the published sequence.

    Every other event of the call was published (exactly once).
    """

    def __init__(self, message: str, failed: Sequence[int]) -> None:
        super().__init__(message)
        self.failed = sorted(failed)


class Publisher(Protocol):
    def publish(self, events: Sequence[OutgoingEvent]) -> int: ...


def envelope(event: OutgoingEvent) -> str:
    """The event as EventBridge delivers it to an SQS target: what every consumer's body holds."""
    import uuid
    from datetime import UTC, datetime

    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event.detail_type,
            "source": event.source,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [],
            "detail": event.detail,
        },
        separators=(",", ":"),
        default=str,
        ensure_ascii=False,
    )


@dataclass(frozen=True)
class _Answer:
    """What one batch call said of the entries it was given (indices in the published sequence)."""

    retry: list[int]  # failed, worth another try (alone)
    rejected: list[int] = field(default_factory=list)  # failed for good (a sender fault)
    errors: list[Any] = field(default_factory=list)  # a few of the failures, for the message


def _send_chunks(
    chunks: Iterable[list[int]], count: int, send: Callable[[list[int]], _Answer], verb: str
) -> tuple[int, list[int], list[Any]]:
    """Sends each chunk of entry indices; failed entries are retried alone, up to ``MAX_TRIES`` calls.

    Returns (calls made, indices that failed, a few errors). A call that raises after an earlier
    chunk went out raises :class:`PartialPublishFailed` naming precisely what was not sent (so the
    caller releases only those); when nothing went out the exception itself propagates. The one loop
    of every wire (EventBridge, SQS, SNS): only ``send`` — the call and the reading of its answer —
    differs."""
    calls = 0
    failed: list[int] = []
    errors: list[Any] = []
    sent = 0
    for chunk in chunks:
        pending = list(chunk)
        sent += len(chunk)
        for attempt in range(MAX_TRIES):
            try:
                answer = send(pending)
            except Exception as exc:
                unsent = pending + list(range(sent, count))
                if not failed and len(unsent) == count:
                    raise
                raise PartialPublishFailed(
                    f"{len(failed) + len(unsent)} of {count} events not {verb}: {exc!r}", failed + unsent
                ) from exc
            calls += 1
            failed.extend(answer.rejected)
            errors = answer.errors[:3] or errors
            pending = answer.retry
            if not pending:
                break
            if attempt + 1 < MAX_TRIES:
                time.sleep(RETRY_DELAY_SECONDS * (attempt + 1))
        failed.extend(pending)
    return calls, failed, errors


class EventBridgePublisher:
    """Puts events on the Huiliu bus; returns the number of PutEvents calls made."""

    def __init__(self, bus_name: str, client: Any | None = None) -> None:
        self.bus_name = bus_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        from huiliu import aws

        return aws.client("events")  # the factory's cached client for the current endpoint

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        entries = [
            {
                "EventBusName": self.bus_name,
                "Source": e.source,
                "DetailType": e.detail_type,
                "Detail": json.dumps(e.detail, separators=(",", ":"), default=str, ensure_ascii=False),
            }
            for e in events
        ]
        # EventBridge counts UTF-8 bytes (a Chinese character is 3), not characters.
        sizes = [sum(len(entry[k].encode()) for k in ("Detail", "DetailType", "Source")) for entry in entries]

        def send(pending: list[int]) -> _Answer:
            response = self.client.put_events(Entries=[entries[i] for i in pending])
            if not response.get("FailedEntryCount"):
                return _Answer(retry=[])
            results = response.get("Entries") or []
            retry = [i for i, r in zip(pending, results, strict=False) if r.get("ErrorCode")]
            retry += pending[len(results) :]  # a short answer: the unanswered count as failed
            return _Answer(retry=retry, errors=[r for r in results if r.get("ErrorCode")])

        calls, failed, errors = _send_chunks(_sized_chunks(sizes), len(entries), send, "published")
        if failed:
            raise PartialPublishFailed(
                f"{len(failed)} of {len(entries)} events rejected after {MAX_TRIES} tries: {errors}", failed
            )
        return calls


class MemoryPublisher:
    """In-memory publisher for unit tests."""

    def __init__(self) -> None:
        self.events: list[OutgoingEvent] = []
        self.calls = 0

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        if not events:
            return 0
        self.events.extend(events)
        self.calls += 1
        return 1

    def of_type(self, detail_type: str) -> list[OutgoingEvent]:
        return [e for e in self.events if e.detail_type == detail_type]


class SqsPublisher:
    """Sends events straight into one consumer's queue, as EventBridge would deliver them.

    For a hop with exactly one consumer (ingest → identity) a queue is the cheaper wire: an
    EventBridge entry costs $1.00 per million plus one SQS request per delivery, while
    SendMessageBatch carries up to 10 events in one $0.40-per-million request (docs/cost.md).
    The body is the EventBridge envelope (``detail-type``, ``source``, ``detail`` …), so the consumer
    cannot tell the two wires apart. Failed entries are retried alone, then reported exactly like
    :class:`EventBridgePublisher` does (:class:`PartialPublishFailed` with their indices).
    """

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from huiliu import aws

            self._client = aws.client("sqs")
        return self._client

    @staticmethod
    def envelope(event: OutgoingEvent) -> str:
        return envelope(event)

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        bodies = [self.envelope(e) for e in events]

        def send(pending: list[int]) -> _Answer:
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": bodies[i]} for i in pending],
            )
            return _Answer(retry=sorted(int(f["Id"]) for f in response.get("Failed") or []))

        sizes = [len(b.encode()) for b in bodies]
        calls, failed, _ = _send_chunks(_sized_chunks(sizes), len(bodies), send, "queued")
        if failed:
            raise PartialPublishFailed(f"{len(failed)} of {len(bodies)} events not queued", failed)
        return calls


# ---------------------------------------------------------------------------------- the SNS wire
# The routing table: detail types published to the bus topic (SNS). Every other detail type goes
# to the EventBridge bus. The hot fan-out is here: each profile change, segment transition, send
# request, send outcome and delivery outcome (feedback). Control-plane, low-volume events stay on
# EventBridge (replays, archive erasure, identity conflicts, event.ingested fed back by journeys and
# feedback, journey outcomes nobody publishes yet): their rules are few and rarely hit.
SNS_DETAIL_TYPES = frozenset(
    {
        "profile.changed",
        "profile.merged",
        "profile.unmerged",
        "profile.erased",
        "segment.entered",
        "segment.exited",
        "notification.requested",
        "notification.sent",
        "notification.suppressed",
        "notification.deferred",
        "notification.failed",
        "notification.delivered",
        "notification.opened",
        "notification.clicked",
        "notification.bounced",
        "notification.complained",
    }
)
SNS = "sns"
EVENTBRIDGE = "eventbridge"
# Order events: a profile.changed they caused carries has_order=true (reports count orders).
# The same set as identity's computed attributes and the reports' counters (a test keeps them equal).
ORDER_EVENTS = frozenset({"Order Completed", "Order Paid"})


def wire_of(detail_type: str) -> str:
    """Which wire a detail type travels on: ``"sns"`` or ``"eventbridge"``."""
    return SNS if detail_type in SNS_DETAIL_TYPES else EVENTBRIDGE


def contact_changed(detail: dict[str, Any]) -> bool:
    """Did this ``profile.changed`` touch what notify's contact projection keeps?

    The projection (``huiliu.notify.models.Contact``) holds contact points (identifiers), marketing
    consent, locale/time zone and the traits templates render: a new profile, a merge, an unmerge,
    added identifiers, a consent change or any trait change. Computed attributes and tags alone do
    not change a contact. A redelivered event carries the same change set (identity's marker keeps
    its out-events), so it routes the same way.
    """
    changed = detail.get("changed") or {}
    return bool(
        detail.get("created")
        or detail.get("merged_from")
        or changed.get("identifiers_added")
        or changed.get("consent")
        or changed.get("traits")
        or changed.get("unmerged")
    )


def has_order(detail: dict[str, Any]) -> bool:
    """Was this ``profile.changed`` caused by an order (``event.name`` an order event)?"""
    trigger = detail.get("event") or {}
    return isinstance(trigger, dict) and trigger.get("name") in ORDER_EVENTS


def routing_attributes(event: OutgoingEvent) -> dict[str, dict[str, str]]:
    """The SNS message attributes subscriptions filter on — computed here and nowhere else.

    Every message: ``detail_type``, ``source``. ``profile.changed``: ``contact_changed`` and
    ``has_order`` (``"true"`` / ``"false"``). ``notification.requested``: ``channel``. Strings only:
    SNS filter policies match strings exactly, and the local runtime models exactly that. At most
    four of SNS's ten attributes per message; their bytes count in the 256 KB batch limit.
    """
    attrs = {"detail_type": event.detail_type, "source": event.source}
    detail = event.detail
    if event.detail_type == "profile.changed":
        attrs["contact_changed"] = _flag(contact_changed(detail))
        attrs["has_order"] = _flag(has_order(detail))
    elif event.detail_type == "notification.requested" and detail.get("channel"):
        attrs["channel"] = str(detail["channel"])
    return {name: {"DataType": "String", "StringValue": value} for name, value in attrs.items()}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    # SNS counts attribute names, types and values in the message size.
    return sum(
        len(name.encode()) + len(a["DataType"].encode()) + len(a["StringValue"].encode())
        for name, a in attributes.items()
    )


def _sized_chunks(sizes: list[int]) -> Iterable[list[int]]:
    """Indices in publish order, ≤ MAX_ENTRIES per chunk and ≤ MAX_REQUEST_BYTES in total."""
    chunk: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if chunk and (len(chunk) == MAX_ENTRIES or total + size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(i)
        total += size
    if chunk:
        yield chunk


class SnsPublisher:
    """Publishes events to the bus topic: PublishBatch of ≤ 10 messages and ≤ 240 KB per call.

    The message is the EventBridge envelope (:func:`envelope`); subscriptions use raw message
    delivery, so each queue's body is exactly what an EventBridge rule would have delivered. The
    message attributes are :func:`routing_attributes`. Entries SNS fails are retried alone (a
    sender fault — an entry SNS will never take — is not retried); entries that still fail raise
    :class:`PartialPublishFailed` with their indices, exactly like the other publishers.
    SNS bills each 64 KB of a request's payload as one request: a full batch of small events costs
    one request for up to 10 events (docs/cost.md).
    """

    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        if not topic_arn:
            raise PublishFailed("no bus topic configured (BUS_TOPIC_ARN): cannot publish to SNS")
        self.topic_arn = topic_arn
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        from huiliu import aws

        return aws.client("sns")  # the factory's cached client for the current endpoint

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        bodies = [envelope(e) for e in events]
        attributes = [routing_attributes(e) for e in events]
        sizes = [len(b.encode()) + _attributes_size(a) for b, a in zip(bodies, attributes, strict=True)]

        def send(pending: list[int]) -> _Answer:
            response = self.client.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[
                    {"Id": str(i), "Message": bodies[i], "MessageAttributes": attributes[i]} for i in pending
                ],
            )
            failures = response.get("Failed") or []
            answered = {int(r["Id"]) for r in [*(response.get("Successful") or []), *failures]}
            retry = {int(f["Id"]) for f in failures if not f.get("SenderFault")}
            retry |= {i for i in pending if i not in answered}  # a short answer: unanswered failed
            rejected = {int(f["Id"]) for f in failures if f.get("SenderFault")}
            _log_published(self.topic_arn, [events[i] for i in pending if i not in retry | rejected])
            return _Answer(retry=sorted(retry), rejected=sorted(rejected), errors=failures)

        calls, failed, errors = _send_chunks(_sized_chunks(sizes), len(bodies), send, "published")
        if failed:
            raise PartialPublishFailed(
                f"{len(failed)} of {len(bodies)} events rejected by SNS: {errors}", sorted(failed)
            )
        return calls


def _log_published(topic: str, events: list[OutgoingEvent]) -> None:
    """The SNS wire's trail: ids only (no detail), at DEBUG (docs/cost.md: the bus log)."""
    from huiliu.observability import logger

    if events and logger.log_level <= 10:  # logging.DEBUG: the ids are not even formatted otherwise
        logger.debug(
            "bus topic published",
            extra={
                "topic": topic.rsplit(":", 1)[-1],
                "events": [
                    f"{e.detail_type}:{e.detail.get('event_id')}:{e.detail.get('tenant_id')}" for e in events
                ],
            },
        )


class RoutingPublisher:
    """The one publisher producers use: each event goes to the wire :func:`wire_of` names.

    Events keep their indices: a failure on either wire is reported as :class:`PartialPublishFailed`
    with the indices of the caller's sequence (when nothing at all was published, the underlying
    error is raised as is). Returns the number of requests made on both wires.
    """

    def __init__(self, eventbridge: Publisher, sns: Publisher | None) -> None:
        self.eventbridge = eventbridge
        self.sns = sns

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        groups: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            groups.setdefault(wire_of(event.detail_type), []).append(i)
        calls = 0
        failed: list[int] = []
        first: Exception | None = None
        for wire, indices in groups.items():
            publisher = self.sns if wire == SNS else self.eventbridge
            try:
                if publisher is None:
                    raise PublishFailed("no bus topic configured (BUS_TOPIC_ARN): cannot publish to SNS")
                calls += publisher.publish([events[i] for i in indices])
            except PartialPublishFailed as exc:
                failed += [indices[j] for j in exc.failed]
                first = first or exc
            except Exception as exc:
                failed += indices
                first = first or exc
        if failed:
            assert first is not None
            if len(groups) == 1 and not isinstance(first, PartialPublishFailed):
                raise first
            raise PartialPublishFailed(
                f"{len(failed)} of {len(events)} events not published: {first}", failed
            ) from first
        return calls


def bus_publisher() -> RoutingPublisher:
    """The publisher every producer uses (the stage runner, admin routes, ticks, feedback)."""
    from huiliu.settings import get_settings

    settings = get_settings()
    sns = SnsPublisher(settings.bus_topic_arn) if settings.bus_topic_arn else None
    return RoutingPublisher(EventBridgePublisher(settings.event_bus_name), sns)
