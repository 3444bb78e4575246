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


class RangeStore:
    """An import store over bytes in memory with ranged reads, JSON objects and deletes."""

    def __init__(self, data: bytes, chunk: int = 64) -> None:
        self.data = data
        self.chunk = chunk
        self.objects: dict[str, dict[str, Any]] = {}
        self.reads: list[int] = []

    def object_chunks(
        self, bucket: str, key: str, start: int = 0, etag: str | None = None
    ) -> tuple[str, Iterator[bytes]] | None:
        self.reads.append(start)
        body = self.data[start:]
        return "etag-1", iter([body[i : i + self.chunk] for i in range(0, len(body), self.chunk)])

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)

    def write_json(self, bucket: str, key: str, value: dict[str, Any]) -> None:
        self.objects[key] = value

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop(key, None)


def test_given_too_little_time_when_importing_then_a_partial_report_and_the_next_run_resumes() -> None:
    lines = ["email,name"] + [f"u{i}@example.com,N{i}" for i in range(25)]
    lines.insert(8, "not-an-email,Bad")  # a rejected row before the first checkpoint
    store = RangeStore(("\n".join(lines) + "\n").encode())
    publisher = MemoryPublisher()
    dedupe = MemoryDedupeStore()
    directory = StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), TenantSecrets())})

    def importer(remaining: int) -> CsvImporter:
        made = CsvImporter(
            store=store,
            directory=directory,
            dedupe=dedupe,
            publisher=publisher,
            clock=lambda: NOW,
            chunk_size=10,
        )
        made.reserve_ms = 1000
        return made

    first = importer(0).run("b", "imports/acme/big.csv", remaining_ms=lambda: 0)
    partial = store.objects["imports/acme/big.report.json"]
    checkpoint = store.objects["imports/acme/big.progress.json"]
    second = importer(10**6).run("b", "imports/acme/big.csv", remaining_ms=lambda: 10**6)

    assert (first.status, partial["status"], partial["accepted"]) == ("in_progress", "in_progress", 10)
    assert checkpoint["line"] == 12
    assert checkpoint["offset"] > 0
    assert store.reads == [0, checkpoint["offset"]]  # the second run read only the rest
    assert (second.status, second.rows, second.accepted, second.rejected_count) == ("complete", 26, 25, 1)
    assert second.rejected == [{"line": 9, "reason": second.rejected[0]["reason"]}]
    assert second.invocations == 2
    assert len(publisher.events) == 25
    assert len({e.detail["message_id"] for e in publisher.events}) == 25
    assert "imports/acme/big.progress.json" not in store.objects


def test_given_a_continuation_without_a_checkpoint_when_run_then_nothing_is_reimported() -> None:
    store = RangeStore(b"email\na@example.com\n")
    publisher = MemoryPublisher()
    directory = StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), TenantSecrets())})
    importer = CsvImporter(
        store=store, directory=directory, dedupe=MemoryDedupeStore(), publisher=publisher, clock=lambda: NOW
    )

    report = importer.run("b", "imports/acme/done.csv", resume_only=True)

    assert report.status == "skipped"
    assert publisher.events == []


def test_given_a_multi_line_quoted_row_when_rejected_then_it_is_reported_at_its_first_line() -> None:
    data = b'email,note\na@example.com,ok\nnot-an-email,"one\ntwo\nthree"\nb@example.com,ok\n'
    store = RangeStore(data)
    directory = StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), TenantSecrets())})
    importer = CsvImporter(
        store=store,
        directory=directory,
        dedupe=MemoryDedupeStore(),
        publisher=MemoryPublisher(),
        clock=lambda: NOW,
    )

    report = importer.run("b", "imports/acme/multi.csv")

    assert [r["line"] for r in report.rejected] == [3]
    assert report.accepted == 2


def test_given_a_row_beyond_the_event_bound_when_imported_then_only_that_row_is_rejected() -> None:
    """A 70 KB cell made a bus event nobody downstream can carry; now the row is reported (issue 8)."""
    data = ("email,note\na@example.com,ok\nb@example.com," + "汉" * 25_000 + "\nc@example.com,ok\n").encode()
    directory = StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), TenantSecrets())})
    publisher = MemoryPublisher()
    importer = CsvImporter(
        store=RangeStore(data, chunk=4096),
        directory=directory,
        dedupe=MemoryDedupeStore(),
        publisher=publisher,
        clock=lambda: NOW,
    )

    report = importer.run("b", "imports/acme/big-cell.csv")

    assert report.accepted == 2
    assert [r["line"] for r in report.rejected] == [3]
    assert report.rejected[0]["reason"].startswith("event_too_large")
    assert len(publisher.events) == 2
