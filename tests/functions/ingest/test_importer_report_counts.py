"""A CSV import shows in the report's ingestion counts like the HTTP connectors: the importer Lambda
(moto S3 and SQS) sends ``ingest.counted`` for connector csv-import to the reports queue; the
reports stage counts it; the JSON report, ``huiliu report``'s table and its HTML page show the
CSV source with its accepted and refused rows by reason."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from huiliu_infra.cli_report import page, tables

from tests.functions.ingest.ingest_helpers import LambdaContext, Stack
from tests.functions.ingest.test_importer_csv import sqs_event_for, upload
from tests.functions.ingest.test_ingest_report_counts import _drain, _report


@pytest.fixture
def reports_queue(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    from huiliu import aws
    from huiliu.settings import get_settings

    url = aws.client("sqs").create_queue(QueueName="reports")["QueueUrl"]
    monkeypatch.setenv("REPORTS_QUEUE_URL", url)
    get_settings.cache_clear()  # the importer's slot is rebuilt for the new settings
    return str(url)


def test_an_import_with_good_and_bad_rows_shows_in_the_reports_ingestion_counts(
    stack: Stack,
    reports_queue: str,
    importer_app: ModuleType,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        "email,phone,name,timestamp",
        "ada@example.com,13800138000,Ada,",
        "bob@example.com,,Bob,2026-01-02",
        "not-an-email,,Nobody,",
        "cy@example.com,,Cy,not a date",
        "dee@example.com,,Dee,",
    ]
    upload("imports/acme/mixed.csv", ("\n".join(rows) + "\n").encode())

    result = importer_app.handler(sqs_event_for("imports/acme/mixed.csv"), lambda_context)
    # the same notification again: rows are duplicates, the report's counts do not move
    importer_app.handler(sqs_event_for("imports/acme/mixed.csv"), lambda_context)

    assert result == {"batchItemFailures": []}
    bodies = _drain(reports_queue)
    assert {json.loads(b)["detail"]["connector"] for b in bodies} == {"csv-import"}
    report = _report(bodies, monkeypatch)
    (row,) = report.ingestion
    assert (row.connector, row.ingested, row.rejected) == ("csv-import", 3, 2)
    assert row.rejected_by_reason == {"no_identifier": 1, "invalid_timestamp": 1}
    assert len(stack.bus_events()) == 3  # what identity was handed

    document = report.model_dump(mode="json")
    [line] = [t for t in tables(document).splitlines() if "csv-import" in t]
    assert line.split()[1:4] == ["csv-import", "3", "2"]
    assert "no_identifier 1" in line
    assert "invalid_timestamp 1" in line
    html = page(document)
    assert "csv-import: no_identifier" in html
    assert "csv-import: invalid_timestamp" in html
