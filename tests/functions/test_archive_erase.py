"""Archive erasure (functions/archive_erase): an erased person's raw requests leave every copy."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from huiliu.ingest.archive import FirehoseArchive, archive_key, decode_object
from moto import mock_aws

from tests.lambda_support import LambdaContext, load_function, sqs_record

BUCKET = "t-raw"
AT = datetime(2026, 3, 1, 8, 30, 5, tzinfo=UTC)


def _record(tenant: str, body: str) -> dict[str, Any]:
    return {"tenant_id": tenant, "connector": "segment", "received_at": AT.isoformat(), "body": body}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-east-1")
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="ap-east-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _object(s3: Any, key: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    lines = b"".join(json.dumps({"ref": ref, **rec}).encode() + b"\n" for ref, rec in records)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(lines))


def _every_version(s3: Any) -> list[bytes]:
    out = []
    for version in s3.list_object_versions(Bucket=BUCKET, Prefix="raw/").get("Versions", []):
        got = s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
        out.append(got["Body"].read())
    return out


def test_given_an_erasure_request_when_handled_then_no_version_of_any_object_holds_the_persons_requests(
    s3: Any,
) -> None:
    # Given the person's two requests, one sharing a stream object with someone else's, one alone,
    # and another tenant's request with the same shape
    mine_shared = archive_key("acme", "segment", AT, "req-mine-1")
    mine_alone = archive_key("acme", "segment", AT, "req-mine-2")
    other = archive_key("acme", "segment", AT, "req-other")
    foreign = archive_key("globex", "segment", AT, "req-mine-1")
    _object(
        s3,
        "raw/2026/03/01/08/s-1-a.gz",
        [(mine_shared, _record("acme", "MEI")), (other, _record("acme", "LEI"))],
    )
    _object(s3, "raw/2026/03/01/08/s-1-b.gz", [(mine_alone, _record("acme", "MEI"))])
    _object(s3, "raw/2026/03/01/08/s-1-c.gz", [(foreign, _record("globex", "MEI"))])
    app = load_function("archive_erase")
    app.configure(FirehoseArchive("stream", BUCKET, s3=s3))
    body = {
        "detail-type": "archive.erase_requested",
        "source": "huiliu.identity",
        "detail": {"tenant_id": "acme", "raw_refs": [mine_shared, mine_alone, foreign]},
    }

    # When the erasure message is handled
    result = app.handler(
        {"Records": [sqs_record(body, queue="erase", attempt=1)]},
        LambdaContext(function_name="archive-erase"),
    )

    # Then no current or older version holds the person's requests; the others stay readable
    assert result == {"batchItemFailures": []}
    refs = [r["ref"] for blob in _every_version(s3) for r in decode_object(blob)]
    assert mine_shared not in refs
    assert mine_alone not in refs
    assert refs.count(other) == 1
    assert foreign in refs  # another tenant's ref is never touched through this tenant's request


def test_given_records_of_one_window_when_read_for_replay_then_only_the_tenants_in_time_order(
    s3: Any,
) -> None:
    later = AT.replace(minute=45)
    a = archive_key("acme", "youzan", later, "d2")
    b = archive_key("acme", "segment", AT, "d1")
    _object(
        s3,
        "raw/2026/03/01/08/s-1-x.gz",
        [
            (a, dict(_record("acme", "x"), connector="youzan", received_at=later.isoformat())),
            (b, _record("acme", "y")),
            (archive_key("globex", "segment", AT, "d3"), _record("globex", "z")),
        ],
    )
    archive = FirehoseArchive("stream", BUCKET, s3=s3)

    found = [ref for ref, _ in archive.records("acme", AT.replace(minute=0), AT.replace(minute=59))]

    assert found == [b, a]
