"""The raw-request archive in S3: every accepted delivery, replayable.

Key: ``raw/{tenant}/{connector}/{yyyy}/{mm}/{dd}/{HHMMSS}-{delivery id}.json``; the object holds
method, path, headers (minus credentials), query, the base64 body and ``received_at``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from huiliu.connectors.base import HttpRequest

PREFIX = "raw"
# Headers that carry credentials are never archived (a Segment write key travels in Authorization).
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def archive_key(tenant_id: str, connector: str, received_at: datetime, delivery_id: str) -> str:
    safe = _UNSAFE.sub("_", delivery_id)[:120] or "delivery"
    return f"{PREFIX}/{tenant_id}/{connector}/{received_at:%Y/%m/%d}/{received_at:%H%M%S}-{safe}.json"


def archive_record(
    request: HttpRequest, *, tenant_id: str, connector: str, received_at: datetime, correlation_id: str | None
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "connector": connector,
        "method": request.method,
        "path": request.path,
        "headers": {k: v for k, v in request.headers.items() if k not in SECRET_HEADERS},
        "query": dict(request.query),
        "body": base64.b64encode(request.body).decode("ascii"),
        "received_at": received_at.isoformat(),
        "request_id": request.request_id,
        "source_ip": request.source_ip,
        "correlation_id": correlation_id,
    }


def request_from_record(record: dict[str, Any]) -> HttpRequest:
    return HttpRequest(
        method=record["method"],
        path=record["path"],
        headers=dict(record.get("headers") or {}),
        query=dict(record.get("query") or {}),
        body=base64.b64decode(record.get("body") or ""),
        request_id=record.get("request_id") or "",
        source_ip=record.get("source_ip") or "",
    )


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    record: dict[str, Any]


class RawArchive(Protocol):
    def put(self, key: str, record: dict[str, Any]) -> None: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def list_prefixes(self, prefix: str) -> list[str]: ...

    def get(self, key: str) -> dict[str, Any]: ...


class S3RawArchive:
    """The archive bucket through boto3."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from huiliu import aws

            self._client = aws.client("s3")
        return self._client

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode(),
            ContentType="application/json",
        )

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def list_prefixes(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return found

    def get(self, key: str) -> dict[str, Any]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(body)


class MemoryRawArchive:
    """In-memory archive for unit tests and benchmarks."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.objects[key] = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()

    def list_keys(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))

    def list_prefixes(self, prefix: str) -> list[str]:
        found = {
            prefix + k[len(prefix) :].split("/", 1)[0] + "/" for k in self.objects if k.startswith(prefix)
        }
        return sorted(p for p in found if p.count("/") > prefix.count("/"))

    def get(self, key: str) -> dict[str, Any]:
        return json.loads(self.objects[key])
