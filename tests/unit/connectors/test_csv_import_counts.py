"""A CSV import's rows in the report's ingestion counts (``ingest.counted``, connector csv-import):
accepted and refused rows by reason, sent per chunk before its checkpoint, with ids a redone chunk
repeats; a count that cannot be sent waits for the next chunk; a refused file counts once."""

from __future__ import annotations

from typing import Any

from huiliu.bus import MemoryPublisher
from huiliu.ingest.fakes import StaticDirectory
from huiliu.ingest.idempotency import MemoryDedupeStore
from huiliu.ingest.importer import CsvImporter
from huiliu.reports.counters import Increments, count
from huiliu.tenants import TenantSecrets, TenantSettings

from tests.unit.connectors.test_csv_import import NOW, RangeStore

DIRECTORY = StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), TenantSecrets())})


class Counts(MemoryPublisher):
    """The reports queue: keeps each ``ingest.counted`` detail; can refuse the next n sends."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail

    def publish(self, events: Any) -> int:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("throttled")
        return super().publish(events)

    @property
    def details(self) -> list[dict[str, Any]]:
        return [e.detail for e in self.events]


def importer(store: RangeStore, counts: Counts, dedupe: MemoryDedupeStore | None = None, **kw: Any) -> Any:
    return CsvImporter(
        store=store,
        directory=DIRECTORY,
        dedupe=dedupe or MemoryDedupeStore(),
        publisher=MemoryPublisher(),
        clock=lambda: NOW,
        counts=counts.publish,
        **kw,
    )


def csv_file(good: int, bad_at: dict[int, str]) -> bytes:
    rows = ["email,name,timestamp"]
    for i in range(good + len(bad_at)):
        rows.append(bad_at.get(i, f"u{i}@example.com,N{i},"))
    return ("\n".join(rows) + "\n").encode()


def totals(details: list[dict[str, Any]]) -> tuple[int, dict[str, int]]:
    refused: dict[str, int] = {}
    for d in details:
        for reason, n in d["rejected"].items():
            refused[reason] = refused.get(reason, 0) + n
    return sum(d["ingested"] for d in details), refused


def test_accepted_and_refused_rows_by_reason_are_counted_for_the_csv_connector() -> None:
    data = csv_file(5, {1: "not-an-email,Nobody,", 3: "x@example.com,X,yesterday-ish", 4: "a,b,c,d"})
    counts = Counts()

    report = importer(RangeStore(data), counts).run("b", "imports/acme/mixed.csv")

    assert (report.accepted, report.rejected_count) == (5, 3)
    assert {(d["tenant_id"], d["connector"], d["day"]) for d in counts.details} == {
        ("acme", "csv-import", "2026-01-02")
    }
    assert totals(counts.details) == (
        5,
        {"no_identifier": 1, "invalid_timestamp": 1, "column_count": 1},
    )
    # what the reports stage adds up from them: the report's ingestion row of the CSV source
    increments = Increments()
    for detail in counts.details:
        count("ingest.counted", detail, increments)
    [(key, added)] = increments.adds.items()
    assert key == ("acme", "INGEST#2026-01-02#csv-import")
    assert (added["ingested"], added["rejected"], added["rejected_no_identifier"]) == (5, 3, 1)


def test_counts_go_per_chunk_and_a_redone_chunk_repeats_its_id() -> None:
    data = csv_file(25, {7: "not-an-email,Bad,"})
    store, counts, dedupe = RangeStore(data), Counts(), MemoryDedupeStore()

    importer(store, counts, dedupe, chunk_size=10).run("b", "imports/acme/big.csv")
    first_ids = [d["event_id"] for d in counts.details]
    # the notification arrives again: every row is a duplicate now, the chunks are the same
    importer(store, counts, dedupe, chunk_size=10).run("b", "imports/acme/big.csv")
    again = counts.details[len(first_ids) :]

    assert [d["ingested"] for d in counts.details[: len(first_ids)]] == [10, 10, 5]
    assert totals(counts.details[: len(first_ids)]) == (25, {"no_identifier": 1})
    assert len(set(first_ids)) == 3
    # only the chunk with something to count is sent again, under the same id: the reports stage
    # skips ids it counted, so the redelivery adds nothing (chunks of duplicates send nothing)
    assert [d["event_id"] for d in again] == first_ids[:1]


def test_a_count_that_cannot_be_sent_waits_for_the_next_chunk_and_the_import_goes_on() -> None:
    counts = Counts(fail=1)

    report = importer(RangeStore(csv_file(25, {})), counts, chunk_size=10).run("b", "imports/acme/f.csv")

    assert report.accepted == 25
    assert report.error is None
    assert [d["ingested"] for d in counts.details] == [20, 5]  # the first chunk's count came with the second


def test_a_file_refused_as_a_whole_counts_once_under_its_reason_and_an_unknown_tenant_not_at_all() -> None:
    counts = Counts()
    store = RangeStore(b"")
    store.objects["imports/acme/default.mapping.json"] = {"columns": 5}

    importer(store, counts).run("b", "imports/acme/bad-mapping.csv")
    importer(RangeStore(b"email\na@example.com\n"), counts).run("b", "imports/ghost/x.csv")

    [detail] = counts.details
    assert (detail["tenant_id"], detail["ingested"], detail["rejected"]) == (
        "acme",
        0,
        {"file_invalid_mapping": 1},
    )


def test_without_a_reports_queue_nothing_is_counted_and_the_import_works() -> None:
    made = CsvImporter(
        store=RangeStore(csv_file(3, {})),
        directory=DIRECTORY,
        dedupe=MemoryDedupeStore(),
        publisher=MemoryPublisher(),
        clock=lambda: NOW,
    )

    assert made.run("b", "imports/acme/x.csv").accepted == 3
