"""CSV bulk import: ``imports/{tenant}/…/x.csv`` in the import bucket → canonical events, streamed.

The file is never loaded whole: bytes are decoded incrementally, rows translated one by one and
published in chunks (``chunk_size`` events, i.e. PutEvents calls of 10), so memory stays flat
whatever the file size. A report (rows accepted, rows rejected with line number and reason) is
written beside the file as ``x.report.json``.

Column mapping, in order of precedence:
1. ``x.mapping.json`` beside the file, else ``imports/{tenant}/default.mapping.json``:
   ``{"columns": {"手机号": "phone", "Name": "trait.name"}, "type": "auto|identify|track",
   "default_event": "Order Completed", "currency": "CNY", "delimiter": ",", "encoding": "utf-8-sig"}``;
2. header-name conventions (:func:`target_for_header`): identifier types (``email``, ``phone``,
   ``user_id``, ``member_id``, ``wechat_openid`` …), order fields (``order_id``, ``revenue``,
   ``currency``), ``timestamp``, ``event``, ``type``, ``message_id``, ``trait.<name>``,
   ``property.<name>``; any other column becomes a trait (identify rows) or property (track rows).
A row is ``track`` when ``type`` says so or (``auto``) when it has an ``order_id`` or ``event``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from huiliu.bus import OutgoingEvent, PartialPublishFailed, Publisher
from huiliu.connectors.common import money, parse_timestamp
from huiliu.connectors.limits import check_event
from huiliu.errors import BadRequest, HuiliuError
from huiliu.identifiers import KNOWN_TYPES, InvalidIdentifier, normalize
from huiliu.ingest.idempotency import DedupeStore
from huiliu.ingest.pipeline import BUS_SOURCE, TenantLookup
from huiliu.models import TENANT_ID_PATTERN, CanonicalEvent, DetailType, EventType, Identifier, Source
from huiliu.observability import logger

CONNECTOR = "csv-import"
IMPORT_PREFIX = "imports/"
MAX_REPORTED_REJECTIONS = 1000
MAX_FIELD_BYTES = 64 * 1024
ALIASES = {
    "mobile": "phone",
    "phone_number": "phone",
    "tel": "phone",
    "手机": "phone",
    "手机号": "phone",
    "电话": "phone",
    "e_mail": "email",
    "email_address": "email",
    "邮箱": "email",
    "userid": "user_id",
    "customer_id": "user_id",
    "member_no": "member_id",
    "card_no": "member_id",
    "会员号": "member_id",
    "会员卡号": "member_id",
    "openid": "wechat_openid",
    "unionid": "wechat_unionid",
    "order": "order_id",
    "order_no": "order_id",
    "订单号": "order_id",
    "total": "revenue",
    "amount": "revenue",
    "金额": "revenue",
    "time": "timestamp",
    "date": "timestamp",
    "created_at": "timestamp",
    "时间": "timestamp",
    "event_name": "event",
    "messageid": "message_id",
}
FIELDS = frozenset({"order_id", "revenue", "currency", "timestamp", "event", "type", "message_id", "ignore"})


class ImportMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(default_factory=dict)
    type: str = Field(default="auto", pattern="^(auto|identify|track)$")
    default_event: str = Field(default="Order Completed", min_length=1, max_length=200)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"


def target_for_header(header: str) -> str:
    """Where a column goes by its name: an identifier type, a known field, trait.x / property.x."""
    name = header.strip().lower().replace(" ", "_").replace("-", "_")
    for prefix, kind in (
        ("trait.", "trait."),
        ("traits.", "trait."),
        ("property.", "property."),
        ("properties.", "property."),
        ("prop.", "property."),
    ):
        if name.startswith(prefix) and len(name) > len(prefix):
            return kind + header.strip()[len(prefix) :]
    name = ALIASES.get(name, name)
    if name in KNOWN_TYPES or name in FIELDS:
        return name
    return "extra." + header.strip()


class RowRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ImportReport:
    bucket: str
    key: str
    tenant_id: str | None = None
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected_count: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    mapping: str = "header conventions"
    started_at: str = ""
    finished_at: str = ""
    # "complete", or "in_progress" while a long file continues in another invocation.
    status: str = "complete"
    # Invocations that worked on this file (> 1 when it was resumed from a checkpoint).
    invocations: int = 1

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED_REJECTIONS:
            self.rejected.append({"line": line, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RowTranslator:
    """One CSV row (a header → value dict) → one canonical event. Pure."""

    def __init__(
        self,
        mapping: ImportMapping,
        tenant_id: str,
        region: str,
        timezone: str,
        file_id: str,
        key: str,
        now: datetime,
    ) -> None:
        self.mapping = mapping
        self.tenant_id = tenant_id
        self.region = region
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.zone = ZoneInfo("Asia/Shanghai")
        self.file_id = file_id
        self.key = key
        self.now = now
        self._targets: dict[str, str] = {}

    def target(self, header: str) -> str:
        found = self._targets.get(header)
        if found is None:
            explicit = self.mapping.columns.get(header)
            found = target_for_header(explicit) if explicit else target_for_header(header)
            self._targets[header] = found
        return found

    def translate(self, line: int, row: dict[str | None, Any]) -> CanonicalEvent:
        if None in row:
            raise RowRejected("more values than header columns")
        identifiers: list[Identifier] = []
        seen: set[tuple[str, str]] = set()
        problems: list[str] = []
        fields: dict[str, str] = {}
        traits: dict[str, Any] = {}
        props: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        for header, raw in row.items():
            if raw is None:
                raise RowRejected("fewer values than header columns")
            value = raw.strip()
            if not value:
                continue
            target = self.target(header or "")
            if target in KNOWN_TYPES:
                try:
                    normal = normalize(target, value, self.region)
                except InvalidIdentifier as exc:
                    problems.append(f"{target}: {exc}")
                    continue
                if (target, normal) not in seen:
                    seen.add((target, normal))
                    identifiers.append(Identifier(type=target, value=normal))
            elif target in FIELDS:
                fields[target] = value
            elif target.startswith("trait."):
                traits[target[6:]] = value
            elif target.startswith("property."):
                props[target[9:]] = value
            else:
                extras[target[6:]] = value
        if not identifiers:
            detail = f" ({'; '.join(problems)})" if problems else ""
            raise RowRejected(f"no valid identifier{detail}")
        kind = (fields.get("type") or self.mapping.type).lower()
        if kind == "auto":
            kind = "track" if ("order_id" in fields or "event" in fields) else "identify"
        if kind not in ("identify", "track"):
            raise RowRejected(f"type must be identify or track, not {kind!r}")
        timestamp = self.now
        if "timestamp" in fields:
            timestamp = self._time(fields["timestamp"])
        message_id = fields.get("message_id") or f"csv-{self.file_id}-{line}"
        common: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "message_id": message_id[:200],
            "timestamp": timestamp,
            "received_at": self.now,
            "source": Source(connector=CONNECTOR, account=self.key[-200:]),
            "identifiers": identifiers,
            "context": {"import": {"key": self.key, "line": line}},
        }
        if kind == "identify":
            return CanonicalEvent(type=EventType.IDENTIFY, traits={**extras, **traits}, **common)
        if "revenue" in fields:
            revenue = money(fields["revenue"])
            if revenue is None:
                raise RowRejected(f"revenue is not a number: {fields['revenue'][:40]!r}")
            props["revenue"] = revenue
        if "order_id" in fields:
            props["order_id"] = fields["order_id"]
        currency = fields.get("currency") or self.mapping.currency
        if currency and ("order_id" in fields or "revenue" in fields):
            props["currency"] = currency.upper()
        event = fields.get("event") or self.mapping.default_event
        if len(event) > 200:
            raise RowRejected("event name longer than 200 characters")
        return CanonicalEvent(type=EventType.TRACK, event=event, properties={**extras, **props}, **common)

    def _time(self, value: str) -> datetime:
        if len(value) in (10, 16, 19) and value[4] == "-" and "T" not in value:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError as exc:
                raise RowRejected(f"timestamp is not a date: {value[:40]!r}") from exc
            return parsed.replace(tzinfo=self.zone) if parsed.tzinfo is None else parsed
        try:
            return parse_timestamp(value)
        except BadRequest as exc:
            raise RowRejected(f"timestamp is not a date: {value[:40]!r}") from exc


def iter_lines(chunks: Iterable[bytes], encoding: str = "utf-8-sig") -> Iterator[str]:
    """Decode byte chunks incrementally and yield lines with their ``\\n`` (csv handles ``\\r``)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        start = 0
        while True:
            end = pending.find("\n", start)
            if end < 0:
                break
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
        if len(pending) > MAX_FIELD_BYTES * 16:
            raise ValueError("a line is longer than 1 MB")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


class LineReader:
    """Lines of a byte stream with the byte offset after the last line handed out (checkpoints).

    Lines are split on ``b"\\n"`` before decoding, which is exact for ASCII-compatible encodings
    (UTF-8, GB18030/GBK, Latin-1 …). For UTF-16/32 ``offset`` is None: such files resume by line
    number (re-read and skipped) instead of a byte range.
    """

    def __init__(self, chunks: Iterable[bytes], encoding: str = "utf-8-sig", offset: int = 0) -> None:
        name = codecs.lookup(encoding).name
        self.splittable = not name.startswith(("utf-16", "utf-32"))
        if offset and name == "utf-8-sig":
            encoding = "utf-8"  # a BOM can only be at the very start
        self.chunks = chunks
        self.encoding = encoding
        self.offset: int | None = offset if self.splittable else None

    def __iter__(self) -> Iterator[str]:
        if not self.splittable:
            yield from iter_lines(self.chunks, self.encoding)
            return
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="strict")
        pending = b""
        for chunk in self.chunks:
            pending = pending + chunk if pending else chunk
            start = 0
            while True:
                end = pending.find(b"\n", start)
                if end < 0:
                    break
                text = decoder.decode(pending[start : end + 1])
                assert self.offset is not None
                self.offset += end + 1 - start
                yield text
                start = end + 1
            pending = pending[start:]
            if len(pending) > MAX_FIELD_BYTES * 16:
                raise ValueError("a line is longer than 1 MB")
        text = decoder.decode(pending, final=True)
        assert self.offset is not None
        self.offset += len(pending)
        if text:
            yield text


class ImportStore(Protocol):
    def object_chunks(self, bucket: str, key: str) -> tuple[str, Iterator[bytes]] | None: ...

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None: ...

    def write_json(self, bucket: str, key: str, value: dict[str, Any]) -> None: ...


class S3ImportStore:
    """The import bucket through boto3: streaming reads, small JSON reads and writes."""

    def __init__(self, client: Any | None = None, chunk_bytes: int = 256 * 1024) -> None:
        self._client = client
        self.chunk_bytes = chunk_bytes

    @property
    def client(self) -> Any:
        if self._client is None:
            from huiliu import aws

            self._client = aws.client("s3")
        return self._client

    def object_chunks(
        self, bucket: str, key: str, start: int = 0, etag: str | None = None
    ) -> tuple[str, Iterator[bytes]] | None:
        """The object's ETag and body chunks; from byte ``start`` (S3 Range GET) of version ``etag``.

        A ranged read of a changed object (ETag differs) or past its end reads it whole again.
        """
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start:
            args["Range"] = f"bytes={start}-"
            if etag:
                args["IfMatch"] = f'"{etag}"'
        try:
            response = self.client.get_object(**args)
        except self.client.exceptions.NoSuchKey:
            return None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if start and code == "InvalidRange":  # nothing left after the checkpoint
                head = self.client.head_object(Bucket=bucket, Key=key)
                found = head.get("ETag", "").strip('"')
                if etag is None or found == etag:
                    return found, iter(())
                return self.object_chunks(bucket, key)
            if start and code in ("PreconditionFailed", "412"):
                return self.object_chunks(bucket, key)  # the file changed: start over
            raise
        return response.get("ETag", "").strip('"'), response["Body"].iter_chunks(self.chunk_bytes)

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # a 404 without the modelled exception (some emulators)
            if "NoSuchKey" in str(exc) or "Not Found" in str(exc) or "404" in str(exc):
                return None
            raise
        return json.loads(body)

    def write_json(self, bucket: str, key: str, value: dict[str, Any]) -> None:
        self.client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(value, ensure_ascii=False, indent=2).encode(),
            ContentType="application/json",
        )


def report_key(key: str) -> str:
    stem = key[:-4] if key.lower().endswith(".csv") else key
    return stem + ".report.json"


def progress_key(key: str) -> str:
    stem = key[:-4] if key.lower().endswith(".csv") else key
    return stem + ".progress.json"


def mapping_keys(key: str, tenant_id: str) -> list[str]:
    stem = key[:-4] if key.lower().endswith(".csv") else key
    return [stem + ".mapping.json", f"{IMPORT_PREFIX}{tenant_id}/default.mapping.json"]


def tenant_of(key: str) -> str | None:
    import re

    if not key.startswith(IMPORT_PREFIX):
        return None
    tenant = key[len(IMPORT_PREFIX) :].split("/", 1)[0]
    return tenant if re.match(TENANT_ID_PATTERN, tenant) and "/" in key[len(IMPORT_PREFIX) :] else None


def is_import_file(key: str) -> bool:
    return key.startswith(IMPORT_PREFIX) and key.lower().endswith(".csv")


@dataclass
class _Job:
    """One invocation's work on one file (what a checkpoint records)."""

    bucket: str
    key: str
    etag: str
    lines: LineReader
    progress: dict[str, Any] | None
    remaining_ms: Callable[[], int] | None
    line: int = 0
    fieldnames: list[str] = field(default_factory=list)
    checkpointed: bool = False


class CsvImporter:
    def __init__(
        self,
        *,
        store: ImportStore,
        directory: TenantLookup,
        dedupe: DedupeStore,
        publisher: Publisher,
        clock: Any | None = None,
        chunk_size: int = 100,
        reserve_ms: int = 60_000,
    ) -> None:
        self.store = store
        self.directory = directory
        self.dedupe = dedupe
        self.publisher = publisher
        if clock is None:
            from huiliu.clock import utcnow

            clock = utcnow
        self.clock = clock
        self.chunk_size = chunk_size
        # Stop (and continue elsewhere) when less than this is left of the Lambda's time.
        self.reserve_ms = reserve_ms
        self.put_events_calls = 0

    def run(
        self,
        bucket: str,
        key: str,
        *,
        remaining_ms: Callable[[], int] | None = None,
        resume_only: bool = False,
    ) -> ImportReport:
        """Import one object; permanent problems go in the report, AWS failures raise (retry).

        Progress (byte offset, line, counts) is checkpointed in ``x.progress.json`` after every
        published chunk, so a retry or a continuation resumes where the last one stopped (S3 Range
        GET). When ``remaining_ms()`` drops below ``reserve_ms`` the import stops after a chunk,
        writes a partial report (``status: in_progress``) and returns it: the caller continues it.
        ``resume_only`` (a continuation message): do nothing unless a checkpoint exists.
        """
        now = self.clock()
        report = ImportReport(bucket=bucket, key=key, started_at=now.isoformat())
        tenant_id = tenant_of(key)
        report.tenant_id = tenant_id
        progress = self._progress(bucket, key) if tenant_id else None
        job: _Job | None = None
        if resume_only and progress is None:
            logger.info("continuation without a checkpoint: already finished", extra={"key": key})
            report.status = "skipped"
            return report
        try:
            if tenant_id is None:
                raise BadRequest("key must look like imports/{tenant}/<file>.csv", reason="bad_key")
            settings = self.directory.settings(tenant_id)
            mapping = self._mapping(bucket, key, tenant_id, report)
            found = self._open(bucket, key, progress)
            if found is None:
                raise BadRequest("the object no longer exists", reason="object_not_found")
            etag, chunks = found
            if progress is not None and progress.get("etag") != etag:
                progress = None  # the file was replaced: its old checkpoint does not apply
                found = self.store.object_chunks(bucket, key)
                if found is None:
                    raise BadRequest("the object no longer exists", reason="object_not_found")
                etag, chunks = found
            if progress is not None:
                self._restore(report, progress)
            file_id = hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:16]
            translator = RowTranslator(
                mapping, tenant_id, settings.default_region, settings.timezone, file_id, key, now
            )
            offset = int(progress["offset"]) if progress and progress.get("offset") is not None else 0
            lines = LineReader(chunks, mapping.encoding, offset)
            job = _Job(bucket, key, etag, lines, progress, remaining_ms)
            finished = self._rows(job, mapping, translator, report, now)
            if not finished:
                report.status = "in_progress"
                report.finished_at = self.clock().isoformat()
                self.store.write_json(bucket, report_key(key), report.as_dict())
                logger.info("csv import paused", extra={"key": key, "line": job.line})
                return report
        except HuiliuError as exc:
            report.error = exc.reason if exc.status != 404 else "unknown tenant"
        except (UnicodeDecodeError, LookupError) as exc:
            report.error = f"cannot decode the file: {exc}"[:300]
        except (csv.Error, ValueError) as exc:
            report.error = f"malformed CSV: {exc}"[:300]
        report.status = "complete"
        report.finished_at = self.clock().isoformat()
        self.store.write_json(bucket, report_key(key), report.as_dict())
        if progress is not None or (job is not None and job.checkpointed):
            self._forget_progress(bucket, key)
        logger.info(
            "csv import finished", extra={k: v for k, v in report.as_dict().items() if k != "rejected"}
        )
        return report

    # -- checkpoints -----------------------------------------------------------------------------
    def _progress(self, bucket: str, key: str) -> dict[str, Any] | None:
        found = self.store.read_json(bucket, progress_key(key))
        return found if isinstance(found, dict) and found.get("etag") else None

    def _open(
        self, bucket: str, key: str, progress: dict[str, Any] | None
    ) -> tuple[str, Iterator[bytes]] | None:
        if progress and progress.get("offset"):
            try:
                return self.store.object_chunks(  # type: ignore[call-arg]
                    bucket, key, start=int(progress["offset"]), etag=progress["etag"]
                )
            except TypeError:  # a store without ranged reads: re-read, skipping done rows by line
                progress["offset"] = None
        return self.store.object_chunks(bucket, key)

    @staticmethod
    def _restore(report: ImportReport, progress: dict[str, Any]) -> None:
        saved = progress.get("report") or {}
        for name in ("rows", "accepted", "duplicates", "rejected_count", "started_at"):
            if name in saved:
                setattr(report, name, saved[name])
        report.rejected = list(saved.get("rejected") or [])[:MAX_REPORTED_REJECTIONS]
        report.invocations = int(saved.get("invocations") or 1) + 1

    def _checkpoint(self, job: _Job, report: ImportReport) -> None:
        job.checkpointed = True
        self.store.write_json(
            job.bucket,
            progress_key(job.key),
            {
                "etag": job.etag,
                "offset": job.lines.offset,
                "line": job.line,
                "fieldnames": job.fieldnames,
                "report": report.as_dict(),
            },
        )

    def _forget_progress(self, bucket: str, key: str) -> None:
        delete = getattr(self.store, "delete", None)
        if delete is not None:
            delete(bucket, progress_key(key))
        else:
            self.store.write_json(bucket, progress_key(key), {})

    def _mapping(self, bucket: str, key: str, tenant_id: str, report: ImportReport) -> ImportMapping:
        for candidate in mapping_keys(key, tenant_id):
            raw = self.store.read_json(bucket, candidate)
            if raw is not None:
                try:
                    mapping = ImportMapping.model_validate(raw)
                except ValidationError as exc:
                    raise BadRequest(f"invalid mapping file {candidate}", reason="invalid_mapping") from exc
                report.mapping = candidate
                return mapping
        return ImportMapping()

    def _rows(
        self,
        job: _Job,
        mapping: ImportMapping,
        translator: RowTranslator,
        report: ImportReport,
        now: datetime,
    ) -> bool:
        """Read, translate and publish rows; False when stopped early for lack of time."""
        csv.field_size_limit(MAX_FIELD_BYTES)
        saved = job.progress or {}
        resumed_by_offset = bool(saved) and job.lines.offset is not None and saved.get("offset") is not None
        fieldnames = saved.get("fieldnames") if resumed_by_offset else None
        base = int(saved.get("line") or 0) if resumed_by_offset else 0
        skip_to = int(saved.get("line") or 0) if saved and not resumed_by_offset else 0
        reader = csv.DictReader(job.lines, fieldnames=fieldnames, delimiter=mapping.delimiter, strict=False)
        if not reader.fieldnames:
            raise BadRequest("the file has no header row", reason="missing_header")
        job.fieldnames = list(reader.fieldnames)
        chunk: list[CanonicalEvent] = []
        while True:
            first_line = base + reader.line_num + 1  # a row spanning lines is reported at its first
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if first_line > skip_to:
                    report.rows += 1
                    report.reject(first_line, f"malformed CSV: {exc}")
                continue
            job.line = base + reader.line_num
            if first_line <= skip_to:
                continue  # done by an earlier invocation (resumed by line number)
            report.rows += 1
            try:
                event = translator.translate(first_line, row)
                check_event(event)  # what the bus and DynamoDB can carry (docs/connectors.md, Bounds)
                chunk.append(event)
            except HuiliuError as exc:
                report.reject(first_line, f"{exc.reason}: {exc.message}"[:300])
            except RowRejected as exc:
                report.reject(first_line, exc.reason)
            except (ValidationError, ValueError) as exc:
                report.reject(first_line, f"invalid row: {str(exc).splitlines()[0][:200]}")
            if len(chunk) >= self.chunk_size:
                self._flush(chunk, report, now)
                chunk = []
                self._checkpoint(job, report)
                if job.remaining_ms is not None and job.remaining_ms() < self.reserve_ms:
                    return False
        if chunk:
            self._flush(chunk, report, now)
        return True

    def _flush(self, events: list[CanonicalEvent], report: ImportReport, now: datetime) -> None:
        by_key = {e.dedupe_key: e for e in events}
        claim = self.dedupe.claim(list(by_key), now)
        fresh = [by_key[k] for k in claim.new]
        if fresh:
            try:
                detail_type = DetailType.EVENT_INGESTED.value
                self.put_events_calls += self.publisher.publish(
                    [OutgoingEvent(BUS_SOURCE, detail_type, e.model_dump(mode="json")) for e in fresh]
                )
            except PartialPublishFailed as exc:  # keep what was delivered; free only the rest
                failed = {claim.new[i] for i in exc.failed if i < len(claim.new)}
                delivered = [k for k in claim.new if k not in failed]
                if delivered:
                    self.dedupe.complete(delivered, now)
                self.dedupe.release(sorted(failed))
                raise
            except BaseException:
                self.dedupe.release(claim.new)
                raise
            self.dedupe.complete(claim.new, now)
        if claim.busy:
            raise RuntimeError(f"{len(claim.busy)} rows are being imported by another invocation; retry")
        report.accepted += len(fresh)
        report.duplicates += len(claim.done) + (len(events) - len(by_key))


def build_importer(settings: Any | None = None) -> CsvImporter:
    from huiliu.bus import SqsPublisher
    from huiliu.ingest.idempotency import DynamoDedupeStore
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantDirectory, TenantRepository

    settings = settings or get_settings()
    return CsvImporter(
        store=S3ImportStore(),
        directory=TenantDirectory(
            TenantRepository(settings.tenants_table),
            secrets_prefix=settings.secrets_prefix,
            salt=settings.hash_salt,
            cache_seconds=settings.config_cache_seconds,
        ),
        dedupe=DynamoDedupeStore(settings.idempotency_table),
        publisher=SqsPublisher(settings.identity_queue_url),
    )
