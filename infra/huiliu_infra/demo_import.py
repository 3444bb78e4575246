"""The demo's CSV import: a small customer file with a bad row, dropped where the importer takes it
(``imports/{tenant}/``), so the report's ingestion shows the ``csv-import`` source beside the
webhooks (accepted rows, refused rows by reason)."""

from __future__ import annotations

import json
from typing import Any

ROWS = [
    "email,phone,name,trait.city",
    "mei@example.cn,13900000011,梅,Hangzhou",
    "tao@example.cn,,陶,Suzhou",
    "not-an-email,,Nobody,",
]


def import_customers(runtime: Any) -> str:
    """Upload the file, wait for the pipeline, return the importer's report in a few lines."""
    from huiliu import aws

    tenant = runtime.tenant["tenant_id"]
    bucket = runtime.deployment.buckets["RawBucket"]
    key = f"imports/{tenant}/demo-customers.csv"
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(ROWS) + "\n").encode())
    runtime.drain(timeout=60)
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key[:-4] + ".report.json")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return f"  s3://{bucket}/{key}: no import report yet"
    lines = [
        f"  s3://{bucket}/{key}: {report['rows']} rows, {report['accepted']} accepted, "
        f"{report['rejected_count']} refused (report beside the file: {key[:-4]}.report.json)"
    ]
    lines += [f"    line {r['line']}: {r['reason']}" for r in report["rejected"]]
    return "\n".join(lines)
