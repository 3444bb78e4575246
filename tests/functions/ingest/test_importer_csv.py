"""CSV import Lambda: SQS-wrapped S3 notifications → rows on the bus, a report beside the file."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.functions.ingest.ingest_helpers import ENV, ROOT, LambdaContext, Stack

EVENTS = Path(ROOT) / "events" / "importer"


def sqs_event_for(key: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "sqs_s3_object_created.json").read_text())
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["bucket"]["name"] = ENV["RAW_BUCKET"]
    body["Records"][0]["s3"]["object"]["key"] = key.replace(" ", "+")
    event["Records"][0]["body"] = json.dumps(body)
    return event


def upload(key: str, data: bytes) -> None:
    from huiliu import aws

    aws.client("s3").put_object(Bucket=ENV["RAW_BUCKET"], Key=key, Body=data)


def read_report(key: str) -> dict[str, Any]:
    from huiliu import aws

    return json.loads(aws.client("s3").get_object(Bucket=ENV["RAW_BUCKET"], Key=key)["Body"].read())


def test_given_a_customer_csv_when_imported_then_valid_rows_are_published_and_the_bad_one_reported(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    upload("imports/acme/customers.csv", (EVENTS / "customers.csv").read_bytes())

    result = importer_app.handler(sqs_event_for("imports/acme/customers.csv"), lambda_context)

    assert result == {"batchItemFailures": []}
    details = [e["detail"] for e in stack.bus_events()]
    assert sorted(d["traits"]["name"] for d in details) == ["Ada", "Bob"]
    assert all(d["type"] == "identify" and d["source"]["connector"] == "csv-import" for d in details)
    report = read_report("imports/acme/customers.report.json")
    assert (report["rows"], report["accepted"], report["rejected_count"]) == (3, 2, 1)
    assert report["rejected"][0]["line"] == 4
    assert "no valid identifier" in report["rejected"][0]["reason"]


def test_given_a_mapping_file_when_a_chinese_header_csv_is_imported_then_columns_follow_it(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    upload("imports/acme/shop/orders 1.mapping.json", (EVENTS / "orders.mapping.json").read_bytes())
    csv_text = "订单号,手机号,金额,姓名\nYZ-1,13800138000,99.5,李雷\n"
    upload("imports/acme/shop/orders 1.csv", csv_text.encode())

    importer_app.handler(sqs_event_for("imports/acme/shop/orders 1.csv"), lambda_context)

    [detail] = [e["detail"] for e in stack.bus_events()]
    assert detail["event"] == "Order Completed"
    assert detail["properties"]["order_id"] == "YZ-1"
    assert detail["properties"]["revenue"] == 99.5
    assert detail["properties"]["currency"] == "CNY"
    assert detail["identifiers"] == [{"type": "phone", "value": "+8613800138000"}]
    assert read_report("imports/acme/shop/orders 1.report.json")["mapping"].endswith("orders 1.mapping.json")


def test_given_the_same_notification_twice_when_imported_then_rows_are_published_once(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    upload("imports/acme/orders.csv", (EVENTS / "orders.csv").read_bytes())

    importer_app.handler(sqs_event_for("imports/acme/orders.csv"), lambda_context)
    importer_app.handler(sqs_event_for("imports/acme/orders.csv"), lambda_context)

    assert [e["detail"]["properties"]["order_id"] for e in stack.bus_events()] == ["O-1"]
    report = read_report("imports/acme/orders.report.json")
    assert report["duplicates"] == 1
    assert report["rejected"] == [{"line": 3, "reason": "revenue is not a number: 'abc'"}]


def test_given_an_s3_test_event_when_received_then_it_is_acknowledged(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    event = json.loads((EVENTS / "sqs_s3_test_event.json").read_text())

    assert importer_app.handler(event, lambda_context) == {"batchItemFailures": []}
    assert stack.bus_events() == []


def test_given_a_csv_for_an_unknown_tenant_when_imported_then_the_report_says_so(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    upload("imports/ghost/c.csv", b"email\na@example.com\n")

    importer_app.handler(sqs_event_for("imports/ghost/c.csv"), lambda_context)

    assert read_report("imports/ghost/c.report.json")["error"] == "unknown tenant"
    assert stack.bus_events() == []


def test_given_an_object_deleted_before_import_when_notified_then_acknowledged_and_reported(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    result = importer_app.handler(sqs_event_for("imports/acme/gone.csv"), lambda_context)

    assert result == {"batchItemFailures": []}
    assert read_report("imports/acme/gone.report.json")["error"] == "object_not_found"


def test_given_identitys_queue_is_unavailable_when_imported_then_the_record_fails_for_a_retry(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    import pytest
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from huiliu import aws

    upload("imports/acme/orders.csv", (EVENTS / "orders.csv").read_bytes())
    aws.client("sqs").delete_queue(QueueUrl=stack.queue_url)  # identity's queue is gone

    with pytest.raises(BatchProcessingError):
        importer_app.handler(sqs_event_for("imports/acme/orders.csv"), lambda_context)


def test_given_a_file_that_outlasts_the_invocation_when_imported_then_it_continues_via_the_queue(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext, monkeypatch: Any
) -> None:
    from huiliu import aws

    sqs = aws.client("sqs")
    queue_url = sqs.create_queue(QueueName="imports")["QueueUrl"]
    monkeypatch.setenv("IMPORT_QUEUE_URL", queue_url)
    rows = "".join(f"u{i}@example.com,N{i}\n" for i in range(250))
    upload("imports/acme/long.csv", ("email,name\n" + rows).encode())
    almost_out = LambdaContext()
    almost_out.get_remaining_time_in_millis = lambda: 1_000  # type: ignore[attr-defined]

    # When the first invocation runs out of time after one chunk
    first = importer_app.handler(sqs_event_for("imports/acme/long.csv"), almost_out)
    partial = read_report("imports/acme/long.report.json")
    [continuation] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    event = {"Records": [{**json.loads((EVENTS / "sqs_s3_object_created.json").read_text())["Records"][0]}]}
    event["Records"][0]["body"] = continuation["Body"]
    # Then the continuation finishes it from the checkpoint (an S3 range read)
    second = importer_app.handler(event, lambda_context)

    assert first == second == {"batchItemFailures": []}
    assert (partial["status"], partial["accepted"]) == ("in_progress", 100)
    report = read_report("imports/acme/long.report.json")
    assert (report["status"], report["rows"], report["accepted"], report["invocations"]) == (
        "complete",
        250,
        250,
        2,
    )
    assert len(stack.bus_events()) == 250


def test_given_no_continuation_queue_when_time_runs_out_then_the_record_fails_and_the_retry_resumes(
    stack: Stack, importer_app: ModuleType, lambda_context: LambdaContext
) -> None:
    rows = "".join(f"u{i}@example.com,N{i}\n" for i in range(150))
    upload("imports/acme/long2.csv", ("email,name\n" + rows).encode())
    almost_out = LambdaContext()
    almost_out.get_remaining_time_in_millis = lambda: 1_000  # type: ignore[attr-defined]
    event = sqs_event_for("imports/acme/long2.csv")

    import pytest
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):  # (a batch whose every record failed)
        importer_app.handler(event, almost_out)
    second = importer_app.handler(event, lambda_context)

    assert second == {"batchItemFailures": []}
    report = read_report("imports/acme/long2.report.json")
    assert (report["rows"], report["accepted"], report["duplicates"]) == (150, 150, 0)
    assert len(stack.bus_events()) == 150
