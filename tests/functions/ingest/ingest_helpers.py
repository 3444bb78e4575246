"""Helpers for the ingest/importer function tests: moto stack, API Gateway events, Lambda context."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from huiliu.tenants import TenantSecrets, TenantSettings
from moto import mock_aws

# re-exported: the admin, ops and ingest tests import them from here
from tests.lambda_support import LambdaContext as LambdaContext
from tests.lambda_support import load_function as load_function

ROOT = Path(__file__).resolve().parents[3]
TENANT = "acme"
ENV = {
    "TENANTS_TABLE": "t-tenants",
    "IDEMPOTENCY_TABLE": "t-idempotency",
    "RAW_BUCKET": "t-raw",
    "EVENT_BUS_NAME": "t-bus",
    "SECRETS_PREFIX": "huiliu/test",
    "AWS_REGION": "ap-east-1",
    "AWS_DEFAULT_REGION": "ap-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_METRICS_NAMESPACE": "Huiliu",
    "POWERTOOLS_TRACE_DISABLED": "1",
}


@dataclass
class Stack:
    secrets: TenantSecrets
    queue_url: str
    tenant: str = TENANT

    def bus_events(self) -> list[dict[str, Any]]:
        from huiliu import aws

        sqs = aws.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            resp = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = resp.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def identity_outcomes(self, queued: list[dict[str, Any]] | None = None) -> list[str]:
        """Hand what ingest queued to a real identity service (in-memory table): one status each.

        Ingest writes no dedupe item per event; identity's processed marker makes a second
        delivery of the same message a ``duplicate`` (docs/cost.md)."""
        from huiliu.identity.repository import MemoryIdentityRepository
        from huiliu.identity.service import IdentityService
        from huiliu.models import CanonicalEvent

        service = IdentityService(MemoryIdentityRepository(salt="t"), salt="t", backoff=lambda _: None)
        queued = self.bus_events() if queued is None else queued
        return [service.process(CanonicalEvent.model_validate(e["detail"])).status for e in queued]

    def raw_keys(self) -> list[str]:
        """The ref of every archived request (a record in the archive stream's objects)."""
        return sorted(r["ref"] for r in self._raw())

    def raw_records(self) -> dict[str, dict[str, Any]]:
        """Archived requests by ref."""
        return {r["ref"]: r for r in self._raw()}

    def _raw(self) -> list[dict[str, Any]]:
        from huiliu import aws
        from huiliu.ingest.archive import decode_object

        s3 = aws.client("s3")
        resp = s3.list_objects_v2(Bucket=ENV["RAW_BUCKET"], Prefix="raw/")
        records: list[dict[str, Any]] = []
        for obj in resp.get("Contents", []):
            body = s3.get_object(Bucket=ENV["RAW_BUCKET"], Key=obj["Key"])["Body"].read()
            records += decode_object(body)
        return records


def http_event(
    path: str,
    body: bytes | str = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    request_id: str = "req-1",
) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", **(headers or {})},
        "queryStringParameters": query or None,
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "203.0.113.9"},
            "requestId": request_id,
        },
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def make_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "LOCALSTACK_ENDPOINT", "LOCALSTACK_HOSTNAME", "USE_LOCALSTACK"):
        monkeypatch.delenv(key, raising=False)
    from huiliu import aws
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantRepository, new_demo_secrets, provision_tenant

    with mock_aws():
        get_settings.cache_clear()
        aws.reset_clients()
        ddb = aws.client("dynamodb")
        ddb.create_table(
            TableName=ENV["TENANTS_TABLE"],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName=ENV["IDEMPOTENCY_TABLE"],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        aws.client("s3").create_bucket(
            Bucket=ENV["RAW_BUCKET"], CreateBucketConfiguration={"LocationConstraint": "ap-east-1"}
        )
        aws.client("events").create_event_bus(Name=ENV["EVENT_BUS_NAME"])
        # The raw archive's delivery stream (moto delivers each call as one object under raw/).
        aws.client("firehose").create_delivery_stream(
            DeliveryStreamName="t-raw-archive",
            ExtendedS3DestinationConfiguration={
                "BucketARN": f"arn:aws:s3:::{ENV['RAW_BUCKET']}",
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "Prefix": "raw/",
            },
        )
        monkeypatch.setenv("RAW_ARCHIVE_STREAM", "t-raw-archive")
        # Canonical events go straight to identity's queue (template: IDENTITY_QUEUE_URL).
        queue_url = aws.client("sqs").create_queue(QueueName="identity")["QueueUrl"]
        monkeypatch.setenv("IDENTITY_QUEUE_URL", queue_url)
        get_settings.cache_clear()
        secrets = new_demo_secrets()
        settings = get_settings()
        provision_tenant(
            TenantSettings(tenant_id=TENANT, name="Acme"),
            secrets,
            repo=TenantRepository(settings.tenants_table),
            secrets_client=aws.client("secretsmanager"),
            secrets_prefix=settings.secrets_prefix,
            salt=settings.hash_salt,
        )
        yield Stack(secrets=secrets, queue_url=queue_url)
        get_settings.cache_clear()
        aws.reset_clients()
