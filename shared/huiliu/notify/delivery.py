"""Bringing requests back later: SQS DelaySeconds up to its 15-minute limit, a due item in
MessagesTable beyond it; the minute tick (:class:`DueTick`) moves due items into the channel queue.

Every channel has its own queue (and DLQ, and event-source maximum concurrency), so a slow or
failing provider only slows its own channel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.contracts import NotificationRequested
from huiliu.notify.repository import MessagesRepository

SQS_MAX_DELAY = 900


def envelope(request: NotificationRequested, now: datetime) -> dict[str, Any]:
    """The request as a bus rule would deliver it (the stage runner reads either the same way)."""
    return {
        "version": "0",
        "id": request.event_id,
        "source": "huiliu.notify",
        "detail-type": request.DETAIL_TYPE,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": request.model_dump(mode="json"),
    }


class SqsRequeue:
    def __init__(
        self,
        queue_urls: dict[str, str],
        repo: MessagesRepository,
        *,
        client: Callable[[], Any],
        max_sqs_delay: int = SQS_MAX_DELAY,
    ) -> None:
        self.queue_urls = queue_urls
        self.repo = repo
        self.client = client
        self.max_sqs_delay = min(max_sqs_delay, SQS_MAX_DELAY)

    def later(self, request: NotificationRequested, at: datetime, now: datetime) -> None:
        delay = math.ceil((at - now).total_seconds())
        body = envelope(request, now)
        if delay <= self.max_sqs_delay:
            self.client().send_message(
                QueueUrl=self.queue_urls[request.channel.value],
                MessageBody=json.dumps(body, ensure_ascii=False),
                DelaySeconds=max(0, delay),
            )
        else:
            self.repo.put_due(request.tenant_id, request.idempotency_key, at, request.channel.value, body)


class MemoryRequeue:
    """Unit tests: what would come back, and when."""

    def __init__(self) -> None:
        self.items: list[tuple[datetime, NotificationRequested]] = []

    def later(self, request: NotificationRequested, at: datetime, now: datetime) -> None:
        self.items.append((at, request))

    def due(self, now: datetime) -> list[NotificationRequested]:
        ready = [r for at, r in self.items if at <= now]
        self.items = [(at, r) for at, r in self.items if at > now]
        return ready


def _hour(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H")


class DueTick:
    """The notify tick: every due item whose time has come goes to its channel's queue."""

    MAX_HOURS = 48  # hours caught up per tick (a long outage catches up over a few ticks)

    def __init__(
        self, repo: MessagesRepository, queue_urls: dict[str, str], client: Callable[[], Any]
    ) -> None:
        self.repo = repo
        self.queue_urls = queue_urls
        self.client = client

    def tick(self, now: datetime) -> Sequence[Any]:
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        cursor_text = self.repo.due_cursor()
        start = (
            datetime.strptime(cursor_text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
            if cursor_text
            else current - timedelta(hours=1)
        )
        hour = start
        processed = 0
        while hour <= current and processed < self.MAX_HOURS:
            items = self.repo.due_in_hour(_hour(hour), now)
            self._release(items)
            processed += 1
            hour += timedelta(hours=1)
        last = min(hour - timedelta(hours=1), current)
        if _hour(last) != cursor_text:
            self.repo.set_due_cursor(_hour(last))
        return []

    def _release(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_channel.setdefault(item["channel"], []).append(item)
        for channel, group in by_channel.items():
            for start in range(0, len(group), 10):
                chunk = group[start : start + 10]
                self.client().send_message_batch(
                    QueueUrl=self.queue_urls[channel],
                    Entries=[{"Id": str(i), "MessageBody": item["body"]} for i, item in enumerate(chunk)],
                )
        # Sent before deleted: a crash in between sends a copy twice, and the claim dedupes it.
        self.repo.delete_due(items)
