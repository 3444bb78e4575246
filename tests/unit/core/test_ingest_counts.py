"""IngestCounts' flush policy (pure: the publisher is a list, times are given)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from huiliu.bus import OutgoingEvent, PartialPublishFailed
from huiliu.reports.ingest_counts import IngestCounts

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.sent: list[list[OutgoingEvent]] = []
        self.fail: list[int] | None = None

    def __call__(self, events: Sequence[OutgoingEvent]) -> int:
        if self.fail is not None:
            failed, self.fail = self.fail, None
            self.sent.append([e for i, e in enumerate(events) if i not in failed])
            raise PartialPublishFailed("some failed", failed)
        self.sent.append(list(events))
        return 1


def test_at_a_steady_rate_one_message_per_window_carries_every_accepted_event() -> None:
    sink = Sink()
    counts = IngestCounts(sink, flush_seconds=10)
    for second in range(60):  # one webhook a second for a minute
        now = T0 + timedelta(seconds=second)
        counts.record("acme", "shopify", now, accepted=1)
        counts.request_done(now)
    assert len(sink.sent) == 6  # t=0, 10, 20, 30, 40, 50
    assert sum(e.detail["ingested"] for batch in sink.sent for e in batch) == 51  # 9 still held
    counts.request_done(T0 + timedelta(seconds=70))
    assert sum(e.detail["ingested"] for batch in sink.sent for e in batch) == 60


def test_a_refusal_is_sent_at_once_and_unknown_tenants_are_not_counted() -> None:
    sink = Sink()
    counts = IngestCounts(sink, flush_seconds=10)
    counts.record("acme", "youzan", T0, accepted=2)
    counts.request_done(T0)
    counts.record(None, "youzan", T0, rejected="not_found")
    counts.record("acme", "youzan", T0 + timedelta(seconds=1), rejected="invalid_signature")
    assert counts.request_done(T0 + timedelta(seconds=1)) == 1
    (event,) = sink.sent[-1]
    assert (event.detail_type, event.detail["tenant_id"], event.detail["rejected"]) == (
        "ingest.counted",
        "acme",
        {"invalid_signature": 1},
    )


def test_one_row_per_tenant_day_and_connector_and_a_partly_failed_send_keeps_only_what_failed() -> None:
    sink = Sink()
    counts = IngestCounts(sink, flush_seconds=0)
    counts.record("acme", "youzan", T0, accepted=1)
    counts.record("acme", "shopify", T0, accepted=2)
    counts.record("beta", "youzan", T0, accepted=3)
    sink.fail = [1]
    assert counts.request_done(T0) == 2
    assert list(counts.pending) == [("acme", "2026-11-27", "shopify")]
    counts.request_done(T0)
    assert sorted(
        (e.detail["tenant_id"], e.detail["connector"], e.detail["ingested"]) for b in sink.sent for e in b
    ) == [
        ("acme", "shopify", 2),
        ("acme", "youzan", 1),
        ("beta", "youzan", 3),
    ]
