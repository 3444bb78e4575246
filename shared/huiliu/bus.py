"""EventBridge publisher: PutEvents in chunks of 10.

Entries EventBridge rejects (``FailedEntryCount`` > 0) are retried alone, a few times; entries that
still fail raise :class:`PartialPublishFailed` naming them, so the caller can keep what was
delivered and release only what was not (no event is published twice by a retry).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def _chunks(entries: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        # EventBridge counts UTF-8 bytes (a Chinese character is 3), not characters.
        entry_size = sum(len(entry[k].encode()) for k in ("Detail", "DetailType", "Source"))
        if chunk and (len(chunk) == MAX_ENTRIES or size + entry_size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry_size
    if chunk:
        yield chunk


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
        calls = 0
        failed: list[int] = []
        errors: list[dict[str, Any]] = []
        chunks = list(_chunks(entries))
        sent = 0
        for chunk in chunks:
            pending = list(range(sent, sent + len(chunk)))
            sent += len(chunk)
            for attempt in range(MAX_TRIES):
                try:
                    response = self.client.put_events(Entries=[entries[i] for i in pending])
                except Exception as exc:
                    # Entries of earlier calls are on the bus: report precisely what is not.
                    unsent = pending + list(range(sent, len(entries)))
                    if not failed and len(unsent) == len(entries):
                        raise
                    raise PartialPublishFailed(
                        f"{len(failed) + len(unsent)} of {len(entries)} events not published: {exc!r}",
                        failed + unsent,
                    ) from exc
                calls += 1
                if not response.get("FailedEntryCount"):
                    pending = []
                    break
                results = response.get("Entries") or []
                still = [i for i, r in zip(pending, results, strict=False) if r.get("ErrorCode")]
                still += pending[len(results) :]  # a short answer: the unanswered count as failed
                errors = [r for r in results if r.get("ErrorCode")][:3] or errors
                pending = still
                if not pending:
                    break
                if attempt + 1 < MAX_TRIES:
                    time.sleep(RETRY_DELAY_SECONDS * (attempt + 1))
            failed.extend(pending)
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

    def publish(self, events: Sequence[OutgoingEvent]) -> int:
        bodies = [self.envelope(e) for e in events]
        entries = [{"Source": "", "DetailType": "", "Detail": b} for b in bodies]  # sized like PutEvents
        calls = 0
        failed: list[int] = []
        sent = 0
        for chunk in _chunks(entries):
            pending = list(range(sent, sent + len(chunk)))
            sent += len(chunk)
            for attempt in range(MAX_TRIES):
                try:
                    response = self.client.send_message_batch(
                        QueueUrl=self.queue_url,
                        Entries=[{"Id": str(i), "MessageBody": bodies[i]} for i in pending],
                    )
                except Exception as exc:
                    unsent = pending + list(range(sent, len(bodies)))
                    if not failed and len(unsent) == len(bodies):
                        raise
                    raise PartialPublishFailed(
                        f"{len(failed) + len(unsent)} of {len(bodies)} events not queued: {exc!r}",
                        failed + unsent,
                    ) from exc
                calls += 1
                pending = sorted(int(f["Id"]) for f in response.get("Failed") or [])
                if not pending:
                    break
                if attempt + 1 < MAX_TRIES:
                    time.sleep(RETRY_DELAY_SECONDS * (attempt + 1))
            failed.extend(pending)
        if failed:
            raise PartialPublishFailed(f"{len(failed)} of {len(bodies)} events not queued", failed)
        return calls
