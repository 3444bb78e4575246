"""The import job: reads a file, translates rows, publishes chunks, checkpoints, reports."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from huiliu.bus import OutgoingEvent, PartialPublishFailed, Publisher
from huiliu.connectors.limits import check_event
from huiliu.errors import BadRequest, HuiliuError
from huiliu.ingest.idempotency import DedupeStore
from huiliu.ingest.importer.counting import ImportCounts
from huiliu.ingest.importer.mapping import MAX_FIELD_BYTES, MAX_REPORTED_REJECTIONS, ImportMapping
from huiliu.ingest.importer.reading import LineReader
from huiliu.ingest.importer.storage import (
    ImportStore,
    S3ImportStore,
    mapping_keys,
    progress_key,
    report_key,
    tenant_of,
)
from huiliu.ingest.importer.translation import RowRejected, RowTranslator
from huiliu.ingest.pipeline import BUS_SOURCE, TenantLookup
from huiliu.models import CanonicalEvent, DetailType
from huiliu.observability import logger


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
    counts: ImportCounts | None = None  # the report's ingestion counts (None: not configured)


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
        counts: Callable[[Sequence[OutgoingEvent]], Any] | None = None,
    ) -> None:
        self.store = store
        # publishes ``ingest.counted`` to the reports stage (huiliu.ingest.importer.counting)
        self.counts = counts
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
        counts: ImportCounts | None = None
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
            if self.counts is not None:
                start = int(progress.get("line") or 0) if progress else 0
                counts = ImportCounts(
                    self.counts, tenant=tenant_id, file_id=file_id, now=now, start_line=start
                )
            translator = RowTranslator(
                mapping, tenant_id, settings.default_region, settings.timezone, file_id, key, now
            )
            offset = int(progress["offset"]) if progress and progress.get("offset") is not None else 0
            lines = LineReader(chunks, mapping.encoding, offset)
            job = _Job(bucket, key, etag, lines, progress, remaining_ms, counts=counts)
            finished = self._rows(job, mapping, translator, report, now)
            if not finished:
                report.status = "in_progress"
                report.finished_at = self.clock().isoformat()
                self.store.write_json(bucket, report_key(key), report.as_dict())
                logger.info("csv import paused", extra={"key": key, "line": job.line})
                return report
        except HuiliuError as exc:
            report.error = exc.reason if exc.status != 404 else "unknown tenant"
            counts = self._refused_file(counts, tenant_id, key, now, exc.reason, exc.status == 404)
        except (UnicodeDecodeError, LookupError) as exc:
            report.error = f"cannot decode the file: {exc}"[:300]
            counts = self._refused_file(counts, tenant_id, key, now, "undecodable")
        except (csv.Error, ValueError) as exc:
            report.error = f"malformed CSV: {exc}"[:300]
            counts = self._refused_file(counts, tenant_id, key, now, "malformed_csv")
        if counts is not None:
            counts.send(job.line if job is not None else 0)
        report.status = "complete"
        report.finished_at = self.clock().isoformat()
        self.store.write_json(bucket, report_key(key), report.as_dict())
        if progress is not None or (job is not None and job.checkpointed):
            self._forget_progress(bucket, key)
        logger.info(
            "csv import finished", extra={k: v for k, v in report.as_dict().items() if k != "rejected"}
        )
        return report

    def _refused_file(
        self,
        counts: ImportCounts | None,
        tenant: str | None,
        key: str,
        now: datetime,
        reason: str,
        unknown_tenant: bool = False,
    ) -> ImportCounts | None:
        """A file refused as a whole counts one refusal under its reason (a known tenant only)."""
        if self.counts is None or tenant is None or unknown_tenant:
            return counts
        if counts is None:  # refused before its rows were opened (not retried: one count per upload)
            file_id = hashlib.sha256(f"{key}/refused/{now.isoformat()}".encode()).hexdigest()[:16]
            counts = ImportCounts(self.counts, tenant=tenant, file_id=file_id, now=now)
        counts.reject(f"file_{reason}")
        return counts

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
                    self._reject(job, report, first_line, "malformed_row", f"malformed CSV: {exc}")
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
                self._reject(job, report, first_line, exc.reason, f"{exc.reason}: {exc.message}"[:300])
            except RowRejected as exc:
                self._reject(job, report, first_line, exc.code, exc.reason)
            except (ValidationError, ValueError) as exc:
                why = f"invalid row: {str(exc).splitlines()[0][:200]}"
                self._reject(job, report, first_line, "invalid_row", why)
            if len(chunk) >= self.chunk_size:
                self._flush(chunk, report, now, job)
                chunk = []
                if job.counts is not None:  # before the checkpoint: a redone chunk resends the same id
                    job.counts.send(job.line)
                self._checkpoint(job, report)
                if job.remaining_ms is not None and job.remaining_ms() < self.reserve_ms:
                    return False
        if chunk:
            self._flush(chunk, report, now, job)
        return True

    @staticmethod
    def _reject(job: _Job, report: ImportReport, line: int, code: str, reason: str) -> None:
        report.reject(line, reason)
        if job.counts is not None:
            job.counts.reject(code)

    def _flush(
        self, events: list[CanonicalEvent], report: ImportReport, now: datetime, job: _Job | None = None
    ) -> None:
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
        if job is not None and job.counts is not None:
            job.counts.accept(len(fresh))
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
        # the report's ingestion counts (ingest.counted on ReportsQueue), as ingest's connectors do
        counts=SqsPublisher(settings.reports_queue_url).publish if settings.reports_queue_url else None,
    )
