"""CSV import domain: header conventions, row translation, streaming in bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from huiliu.bus import MemoryPublisher
from huiliu.ingest.fakes import StaticDirectory
from huiliu.ingest.idempotency import MemoryDedupeStore
from huiliu.ingest.importer import (
    CsvImporter,
    ImportMapping,
    RowRejected,
    RowTranslator,
    iter_lines,
    target_for_header,
)
from huiliu.tenants import TenantSecrets, TenantSettings

NOW = datetime(2026, 1, 2, tzinfo=UTC)


class StreamStore:
    """An import store whose object is generated on the fly (never held whole in memory)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.written: dict[str, dict[str, Any]] = {}

    def object_chunks(self, bucket: str, key: str) -> tuple[str, Iterator[bytes]] | None:
        return "etag-1", self.chunks

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        return None

    def write_json(self, bucket: str, key: str, value: dict[str, Any]) -> None:
        self.written[key] = value


class CountingPublisher(MemoryPublisher):
    """Counts events and PutEvents-sized calls without keeping the events."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def publish(self, events: Any) -> int:
        self.count += len(events)
        calls = -(-len(events) // 10)
        self.calls += calls
        return calls


def translator(**mapping: Any) -> RowTranslator:
    return RowTranslator(
        ImportMapping(**mapping), "acme", "CN", "Asia/Shanghai", "f1", "imports/acme/x.csv", NOW
    )


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("Email", "email"),
        ("手机号", "phone"),
        ("Mobile", "phone"),
        ("trait.city", "trait.city"),
        ("property.store", "property.store"),
        ("Order ID", "order_id"),
        ("favourite colour", "extra.favourite colour"),
    ],
)
def test_given_a_header_when_resolved_then_the_convention_applies(header: str, target: str) -> None:
    assert target_for_header(header) == target


def test_given_a_row_with_order_id_when_translated_then_an_order_event_in_the_shop_time_zone() -> None:
    row = {"order_id": "O-9", "phone": "13800138000", "revenue": "10.5", "timestamp": "2026-01-02 10:00:00"}

    event = translator(currency="CNY").translate(2, row)

    assert event.event == "Order Completed"
    assert event.properties == {"order_id": "O-9", "revenue": 10.5, "currency": "CNY"}
    assert event.timestamp.isoformat() == "2026-01-02T10:00:00+08:00"
    assert event.message_id == "csv-f1-2"


def test_given_a_row_without_any_valid_identifier_when_translated_then_rejected_with_the_reason() -> None:
    with pytest.raises(RowRejected) as caught:
        translator().translate(5, {"email": "nope", "name": "X"})

    assert "email" in caught.value.reason


def test_given_crlf_and_quoted_newlines_when_split_into_lines_then_csv_reads_them_intact() -> None:
    import csv

    chunks = [b'email,note\r\na@example.com,"two\r\nlines"\r\n', b"b@example.com,plain"]

    rows = list(csv.DictReader(iter_lines(chunks)))

    assert rows == [
        {"email": "a@example.com", "note": "two\r\nlines"},
        {"email": "b@example.com", "note": "plain"},
    ]


def test_given_a_multibyte_character_split_across_chunks_when_decoded_then_it_is_intact() -> None:
    data = "name\n李雷\n".encode()

    assert list(iter_lines([data[:7], data[7:]])) == ["name\n", "李雷\n"]


def test_given_a_large_streamed_file_when_imported_then_memory_stays_flat_and_calls_are_batched() -> None:
    rows = 10_000  # about 0.5 MB of CSV; peak memory must not grow with the file

    def generate() -> Iterator[bytes]:
        yield b"email,phone,name\n"
        for start in range(0, rows, 1000):
            yield "".join(
                f"user{i}@example.com,1380013{i % 10000:04d},Name {i}\n" for i in range(start, start + 1000)
            ).encode()

    publisher = CountingPublisher()
    directory = StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), TenantSecrets())})
    importer = CsvImporter(
        store=StreamStore(generate()),
        directory=directory,
        dedupe=_ForgetfulDedupe(),
        publisher=publisher,
        clock=lambda: NOW,
    )
    tracemalloc.start()
    report = importer.run("bucket", "imports/acme/big.csv")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert report.accepted == rows
    assert publisher.count == rows
    assert publisher.calls / rows <= 0.1
    assert peak < 8 * 1024 * 1024


class _ForgetfulDedupe(MemoryDedupeStore):
    """Dedupe that forgets completed keys, so the memory measured is the importer's own."""

    def complete(self, keys: Any, now: datetime) -> None:
        for key in keys:
            self.items.pop(key, None)
