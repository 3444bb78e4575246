"""End to end on the local runtime: a CSV upload with good and bad rows → importer → ReportsQueue
(``ingest.counted``, connector csv-import) → reports → ``GET /admin/reports`` and ``huiliu report``
show the CSV source with its accepted rows and its refused rows by reason."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from huiliu import aws

from tests.integration.helpers import eventually
from tests.integration.test_local_notify import _admin, _cli

pytestmark = pytest.mark.integration


def _csv_totals(runtime: Any) -> tuple[int, dict[str, int]]:
    status, report = _admin(runtime, "GET", "/reports")
    assert status == 200, report
    ingested, refused = 0, {}
    for row in report["ingestion"]:
        if row["connector"] == "csv-import":
            ingested += row["ingested"]
            for reason, n in row["rejected_by_reason"].items():
                refused[reason] = refused.get(reason, 0) + n
    return ingested, refused


def test_an_imported_file_shows_in_the_reports_ingestion_counts(local_runtime: Any) -> None:
    assert local_runtime.drain(timeout=30)
    before_ingested, before_refused = _csv_totals(local_runtime)
    run = uuid.uuid4().hex[:8]
    rows = [
        "email,name,timestamp",
        f"a-{run}@example.com,Ada,",
        f"b-{run}@example.com,Bob,2026-01-02",
        "not-an-email,Nobody,",
        f"c-{run}@example.com,Cy,not a date",
    ]
    bucket = local_runtime.deployment.buckets["RawBucket"]
    aws.client("s3").put_object(
        Bucket=bucket, Key=f"imports/demo/report-{run}.csv", Body=("\n".join(rows) + "\n").encode()
    )

    def counted() -> tuple[int, dict[str, int]] | None:
        assert local_runtime.drain(timeout=30)
        ingested, refused = _csv_totals(local_runtime)
        return (ingested, refused) if ingested >= before_ingested + 2 else None

    ingested, refused = eventually(counted, timeout=60)
    assert ingested - before_ingested == 2
    assert refused.get("no_identifier", 0) - before_refused.get("no_identifier", 0) == 1
    assert refused.get("invalid_timestamp", 0) - before_refused.get("invalid_timestamp", 0) == 1
    code, out = _cli(local_runtime, "report")
    assert code == 0
    assert any("csv-import" in line and "no_identifier" in line for line in out.splitlines())
