"""EventBridge publisher: PutEvents in chunks of 10, raising on any failed entry."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from huiliu.errors import PublishFailed

MAX_ENTRIES = 10
# PutEvents caps a request at 256 KB in total; stay below with room for the envelope.
MAX_REQUEST_BYTES = 240 * 1024


@dataclass(frozen=True)
class OutgoingEvent:
    source: str
    detail_type: str
    detail: dict[str, Any]


class Publisher(Protocol):
    def publish(self, events: Sequence[OutgoingEvent]) -> int: ...


def _chunks(entries: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(entry["Detail"]) + len(entry["DetailType"]) + len(entry["Source"])
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
        if self._client is None:
            from huiliu import aws

            self._client = aws.client("events")
        return self._client

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
        for chunk in _chunks(entries):
            response = self.client.put_events(Entries=chunk)
            calls += 1
            if response.get("FailedEntryCount"):
                failures = [r for r in response.get("Entries", []) if r.get("ErrorCode")]
                raise PublishFailed(f"{len(failures)} of {len(chunk)} events rejected: {failures[:3]}")
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
