"""CSV bulk import through the deployed wiring: S3 upload → bucket notification → import queue →
importer → bus → identity, with a report written beside the file."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from huiliu import aws

from tests.integration.helpers import eventually, identity_item

pytestmark = pytest.mark.integration


def _report(bucket: str, key: str) -> dict[str, Any] | None:
    s3 = aws.client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


@pytest.mark.parametrize("suffix", [".csv", ".CSV"])
def test_an_uploaded_csv_becomes_profiles_and_a_report(local_runtime: Any, suffix: str) -> None:
    # Given a small customer export with one bad row
    bucket = local_runtime.deployment.buckets["RawBucket"]
    run = uuid.uuid4().hex[:8]
    rows = [
        "email,phone,user_id,name",
        f"csv-{run}@example.com,,csv-{run},Ada",
        "not-an-email,,,Nobody",
    ]
    key = f"imports/demo/customers-{run}{suffix}"

    # When it is uploaded under the tenant's prefix
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(rows).encode())

    # Then a report lands beside it, and the good row becomes a profile via the bus and identity
    report = eventually(lambda: _report(bucket, key[: -len(suffix)] + ".report.json"), timeout=30)
    assert report["accepted"] == 1
    assert len(report["rejected"]) == 1
    assert report["rejected"][0]["line"] == 3
    assert eventually(lambda: identity_item(local_runtime, f"T#demo#ID#user_id#csv-{run}", "CLAIM"))
