"""The raw-request archive: every accepted delivery, replayable within the replay window.

Each delivery is one JSON **record** — method, path, headers (minus credentials), query, the base64
body, ``received_at`` — named by its **ref** ``raw/{tenant}/{connector}/{yyyy}/{mm}/{dd}/{HHMMSS}-
{delivery id}.json`` (every event it produced carries the ref as ``raw_ref``; identity keeps it on
the timeline item). Records are not one S3 object each: ingest puts them on a Firehose delivery
stream (``RAW_ARCHIVE_STREAM``), which writes one GZIP object of newline-delimited records per
buffer (≤ 60 s or 64 MB) under ``raw/{yyyy}/{MM}/{dd}/{HH}/`` (the hour of the buffer's oldest
record) — an S3 PUT per buffer instead of one per request (docs/cost.md).

Retention: the bucket's lifecycle rule expires ``raw/`` after the stage's ``RawRetentionDays``
(template.yaml, the replay window). Erasure: :meth:`FirehoseArchive.erase` rewrites every object
holding one of the person's refs without those records and deletes the object's older versions
(functions/archive_erase, fed by ``archive.erase_requested`` from identity's erase).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from huiliu.connectors.base import HttpRequest

PREFIX = "raw"
# Headers that carry credentials are never archived (a Segment write key travels in Authorization).
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


# Objects of the delivery stream: raw/{yyyy}/{MM}/{dd}/{HH}/… (template.yaml RawArchiveStream).
STREAM_PREFIX = "raw/"
# A record lands in the object of a buffer whose oldest record arrived at most this long before it.
BUFFER_SECONDS = 60
_REF = re.compile(r"^raw/(?P<tenant>[^/]+)/(?P<connector>[^/]+)/(?P<d>\d{4}/\d{2}/\d{2})/(?P<t>\d{6})-")


def ref_time(ref: str) -> datetime | None:
    """The receive time (to the second) a ref names, or None for something that is not a ref."""
    match = _REF.match(ref)
    if not match:
        return None
    return datetime.strptime(f"{match['d']} {match['t']}", "%Y/%m/%d %H%M%S").replace(tzinfo=UTC)


def ref_tenant(ref: str) -> str | None:
    match = _REF.match(ref)
    return match["tenant"] if match else None


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


@dataclass
class EraseReport:
    refs: int = 0
    objects_read: int = 0
    objects_rewritten: int = 0
    records_removed: int = 0
    versions_deleted: int = 0
    not_found: list[str] = field(default_factory=list)


class RawArchive(Protocol):
    def put(self, key: str, record: dict[str, Any]) -> None: ...

    def records(
        self, tenant_id: str, start: datetime, end: datetime, connector: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(ref, record) of a tenant's deliveries received in [start, end], oldest first."""
        ...


def _line(key: str, record: dict[str, Any]) -> bytes:
    return json.dumps({"ref": key, **record}, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _in_window(
    record: dict[str, Any], tenant_id: str, start: datetime, end: datetime, connector: str | None
) -> bool:
    if record.get("tenant_id") != tenant_id or (connector and record.get("connector") != connector):
        return False
    try:
        at = datetime.fromisoformat(record["received_at"])
    except (KeyError, TypeError, ValueError):
        return False
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return start <= at <= end


def _aware(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour <= end:
        yield hour
        hour += timedelta(hours=1)


def decode_object(body: bytes) -> list[dict[str, Any]]:
    """The records of one stream object (GZIP or plain newline-delimited JSON)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    out = []
    for line in body.splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


class FirehoseArchive:
    """Writes records to the delivery stream; reads, replays and erases the objects it delivers."""

    def __init__(
        self,
        stream: str,
        bucket: str,
        *,
        firehose: Any | None = None,
        s3: Any | None = None,
        buffer_seconds: int = BUFFER_SECONDS,
    ) -> None:
        self.stream = stream
        self.bucket = bucket
        self._firehose = firehose
        self._s3 = s3
        self.buffer_seconds = buffer_seconds

    @property
    def firehose(self) -> Any:
        if self._firehose is None:
            from huiliu import aws

            self._firehose = aws.client("firehose")
        return self._firehose

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            from huiliu import aws

            self._s3 = aws.client("s3")
        return self._s3

    # -- writing -----------------------------------------------------------------------------------
    def put(self, key: str, record: dict[str, Any]) -> None:
        response = self.firehose.put_record_batch(
            DeliveryStreamName=self.stream, Records=[{"Data": _line(key, record)}]
        )
        if response.get("FailedPutCount"):
            raise RuntimeError(f"archive stream refused the record: {response['RequestResponses'][:1]}")

    # -- reading -----------------------------------------------------------------------------------
    def _objects(self, start: datetime, end: datetime) -> Iterator[str]:
        """Keys of the stream objects that can hold records received in [start, end]."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for hour in _hours(start - timedelta(seconds=self.buffer_seconds), end):
            prefix = f"{STREAM_PREFIX}{hour:%Y/%m/%d/%H}/"
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]

    def _read(self, key: str) -> list[dict[str, Any]]:
        return decode_object(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def records(
        self, tenant_id: str, start: datetime, end: datetime, connector: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        start, end = _aware(start), _aware(end)
        found = []
        for key in self._objects(start, end):
            for record in self._read(key):
                if _in_window(record, tenant_id, start, end, connector):
                    found.append((record.get("received_at", ""), record["ref"], record))
        found.sort(key=lambda row: (row[0], row[1]))
        for _at, ref, record in found:
            yield ref, {k: v for k, v in record.items() if k != "ref"}

    # -- erasure -----------------------------------------------------------------------------------
    def erase(self, refs: Iterable[str]) -> EraseReport:
        """Remove the records named by ``refs`` from every object holding them, and the objects'
        older versions (the bucket is versioned), so no copy stays readable."""
        wanted = {r for r in refs if ref_time(r) is not None}
        report = EraseReport(refs=len(wanted))
        if not wanted:
            return report
        times = sorted(t for t in (ref_time(r) for r in wanted) if t is not None)
        keys: set[str] = set()
        for at in times:
            keys.update(self._objects(at, at + timedelta(seconds=1)))
        found: set[str] = set()
        for key in sorted(keys):
            report.objects_read += 1
            records = self._read(key)
            kept = [r for r in records if r.get("ref") not in wanted]
            if len(kept) == len(records):
                continue
            found.update(r["ref"] for r in records if r.get("ref") in wanted)
            report.records_removed += len(records) - len(kept)
            if kept:
                body = b"".join(_line(r["ref"], {k: v for k, v in r.items() if k != "ref"}) for r in kept)
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(body))
                report.objects_rewritten += 1
            else:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            report.versions_deleted += self._drop_old_versions(key, keep_latest=bool(kept))
        report.not_found = sorted(wanted - found)
        return report

    def _drop_old_versions(self, key: str, *, keep_latest: bool) -> int:
        deleted = 0
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if version["Key"] != key or (keep_latest and version.get("IsLatest")):
                    continue
                self.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=version["VersionId"])
                deleted += 1
        return deleted


class MemoryRawArchive:
    """In-memory archive for unit tests and benchmarks: ``objects`` maps each ref to its record."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.objects[key] = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()

    def get(self, key: str) -> dict[str, Any]:
        return json.loads(self.objects[key])

    def records(
        self, tenant_id: str, start: datetime, end: datetime, connector: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        start, end = _aware(start), _aware(end)
        rows = [(k, json.loads(v)) for k, v in self.objects.items()]
        rows = [(k, r) for k, r in rows if _in_window(r, tenant_id, start, end, connector)]
        rows.sort(key=lambda kv: (kv[1].get("received_at", ""), kv[0]))
        yield from rows

    def erase(self, refs: Iterable[str]) -> EraseReport:
        wanted = set(refs)
        report = EraseReport(refs=len(wanted))
        for ref in wanted:
            if self.objects.pop(ref, None) is None:
                report.not_found.append(ref)
            else:
                report.records_removed += 1
        return report
