"""The ingest pipeline: one place for routing, limits, auth, dedupe, archive, publish and errors.

    HTTP request ─▶ route (/v1/hooks/{connector}/{tenant} or Segment's /v1/{call})
                 ─▶ body limit, gzip ─▶ tenant + secrets (404 alike for unknown tenant/connector)
                 ─▶ connector.handle (verify, parse, translate — pure)
                 ─▶ claim dedupe keys ─▶ archive raw request (S3) ─▶ PutEvents ─▶ complete keys
                 ─▶ the source's own success reply

Every failure becomes a 4xx with a machine-readable ``code`` (or 503 when AWS fails, so the
source retries); nothing is dropped silently.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import import_module
from typing import Any, Protocol

from huiliu.bus import OutgoingEvent, PartialPublishFailed, Publisher
from huiliu.connectors.base import (
    Authenticated,
    Connector,
    ConnectorResult,
    HttpReply,
    HttpRequest,
    TenantContext,
)
from huiliu.connectors.limits import check_event
from huiliu.errors import (
    BadRequest,
    HuiliuError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from huiliu.ingest.archive import RawArchive, archive_key, archive_record
from huiliu.ingest.idempotency import DedupeStore
from huiliu.ingest.metrics import IngestMetrics
from huiliu.models import TENANT_ID_PATTERN, CanonicalEvent, DetailType
from huiliu.observability import CORRELATION_HEADER, bind_correlation, logger
from huiliu.tenants import TenantSecrets, TenantSettings

BUS_SOURCE = "huiliu.ingest"
CONNECTORS: dict[str, str] = {
    "youzan": "huiliu.connectors.youzan:YouzanConnector",
    "wechat": "huiliu.connectors.wechat:WeChatConnector",
    "shopify": "huiliu.connectors.shopify:ShopifyConnector",
    "segment": "huiliu.connectors.segment:SegmentConnector",
    "signed-json": "huiliu.connectors.signed_json:SignedJsonConnector",
}
# TenantSecrets attribute holding each connector's secret.
SECRET_ATTRS = {"signed-json": "signed_json"}
_HOOK_PATH = re.compile(r"^/v1/hooks/(?P<connector>[^/]{1,40})/(?P<tenant>[^/]{1,80})/?$")
_SEGMENT_PATH = re.compile(r"^/v1/(?P<call>identify|track|page|screen|alias|group|batch)/?$")
_TENANT = re.compile(TENANT_ID_PATTERN)
_CORRELATION = re.compile(r"^[\x21-\x7e]{1,128}$")
# How long a WeChat plain-mode (timestamp, nonce) stays bound to its body (> the ±5 min window).
REPLAY_GUARD_SECONDS = 900
GZIP_MAGIC = b"\x1f\x8b"
NOT_FOUND_BODY = '{"success":false,"code":"not_found","message":"unknown tenant or connector"}'


class TenantLookup(Protocol):
    def settings(self, tenant_id: str) -> TenantSettings: ...

    def secrets(self, tenant_id: str) -> TenantSecrets: ...

    def tenant_for_write_key(self, write_key: str) -> str | None: ...


class ServiceUnavailable(HuiliuError):
    status = 503
    reason = "unavailable"


class HiddenAuthFailure(NotFound):
    """An authentication failure on a hook route: answered exactly like an unknown tenant (404),
    so nobody can probe which tenants exist. ``reason`` keeps the real cause for logs/metrics."""


class ReplayedSignature(Unauthorized):
    reason = "replayed_signature"


def error_reply(exc: HuiliuError) -> HttpReply:
    if exc.status == 404:
        return HttpReply(404, NOT_FOUND_BODY)
    body = {"success": False, "code": exc.reason, "message": exc.message}
    return HttpReply(exc.status, json.dumps(body, ensure_ascii=False, separators=(",", ":")))


@dataclass(frozen=True)
class Route:
    connector: str
    tenant_id: str | None  # None: resolved from the Segment write key


def route(path: str) -> Route:
    hook = _HOOK_PATH.match(path)
    if hook:
        connector, tenant = hook["connector"], hook["tenant"]
        if connector not in CONNECTORS or not _TENANT.match(tenant):
            raise NotFound("unknown tenant or connector")
        return Route(connector, tenant)
    if _SEGMENT_PATH.match(path):
        return Route("segment", None)
    raise NotFound("unknown tenant or connector")


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing to produce more than ``limit`` bytes (gzip bombs)."""
    try:
        inflater = zlib.decompressobj(wbits=31)
        data = inflater.decompress(body, limit + 1)
        if len(data) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body larger than {limit} bytes")
        return data + inflater.flush()
    except zlib.error as exc:
        raise BadRequest("body is not valid gzip", reason="invalid_encoding") from exc


def basic_auth_user(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Unauthorized("malformed basic auth", reason="invalid_write_key") from exc
    return decoded.split(":", 1)[0]


def segment_write_key(request: HttpRequest) -> str:
    key = basic_auth_user(request.header("authorization"))
    if key:
        return key
    from huiliu.connectors.common import parse_json_bytes

    body = parse_json_bytes(request.body)
    key = body.get("writeKey") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        raise Unauthorized(
            "a write key is required (basic auth user or writeKey)", reason="missing_write_key"
        )
    return key


def without_write_key(request: HttpRequest) -> HttpRequest:
    """The request with a body ``writeKey`` removed (credentials are never archived)."""
    if b"writeKey" not in request.body:
        return request
    from huiliu.connectors.common import parse_json_bytes

    try:
        body = parse_json_bytes(request.body)
    except BadRequest:
        return request
    if not isinstance(body, dict) or "writeKey" not in body:
        return request
    body = {k: v for k, v in body.items() if k != "writeKey"}
    cleaned = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return replace(request, body=cleaned, headers={**request.headers, "content-length": str(len(cleaned))})


@dataclass
class Outcome:
    """What one delivery produced (the HTTP reply plus counts, for replay and tests)."""

    reply: HttpReply
    connector: str = ""
    tenant_id: str | None = None
    accepted: list[CanonicalEvent] = field(default_factory=list)
    duplicates: int = 0
    raw_ref: str | None = None
    error: str | None = None


class IngestPipeline:
    def __init__(
        self,
        *,
        directory: TenantLookup,
        dedupe: DedupeStore,
        archive: RawArchive,
        publisher: Publisher,
        metrics: IngestMetrics,
        clock: Callable[[], datetime] | None = None,
        max_body_bytes: int = 512 * 1024,
        counts: Any = None,
    ) -> None:
        self.counts = counts  # huiliu.reports.ingest_counts.IngestCounts: the report's per-tenant counts
        self._resolved: str | None = None  # the tenant this request was found to belong to
        self.directory = directory
        self.dedupe = dedupe
        self.archive = archive
        self.publisher = publisher
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        if clock is None:
            from huiliu.clock import utcnow

            clock = utcnow
        self.clock = clock
        self._connectors: dict[str, Connector] = {}

    # -- public ------------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpReply:
        return self.ingest(request).reply

    def ingest(
        self,
        request: HttpRequest,
        *,
        tenant_id: str | None = None,
        connector: str | None = None,
        now: datetime | None = None,
        force: bool = False,
        raw_ref: str | None = None,
    ) -> Outcome:
        """Process one delivery. ``tenant_id``/``connector``/``raw_ref`` are set by replay only."""
        name = connector or ""
        correlation_id = self._correlation_id(request)
        logger.remove_keys(["tenant_id", "connector"])
        bind_correlation(correlation_id)
        self._resolved = None
        outcome: Outcome | None = None
        try:
            outcome = self._guarded(request, name, tenant_id, connector, now, force, raw_ref, correlation_id)
            return outcome
        finally:
            self.metrics.flush()
            if self.counts is not None and outcome is not None and raw_ref is None:
                self._count(outcome)

    def _guarded(
        self,
        request: HttpRequest,
        name: str,
        tenant_id: str | None,
        connector: str | None,
        now: datetime | None,
        force: bool,
        raw_ref: str | None,
        correlation_id: str,
    ) -> Outcome:
        try:
            if connector is None:
                found = route(request.path)
                name, tenant_id = found.connector, found.tenant_id
            # Replays (raw_ref given) are counted apart so they do not inflate ``received``.
            self.metrics.count("replayed" if raw_ref is not None else "received", name)
            return self._ingest(request, name, tenant_id, now or self.clock(), force, raw_ref, correlation_id)
        except HuiliuError as exc:
            self.metrics.count("rejected", name or "unknown", reason=exc.reason)
            logger.info(
                "ingest rejected", extra={"connector": name, "reason": exc.reason, "status": exc.status}
            )
            return Outcome(error_reply(exc), name, tenant_id, error=exc.reason)
        except Exception as exc:  # AWS trouble: 503 so the source retries; never a silent drop
            logger.exception("ingest failed", extra={"connector": name})
            self.metrics.count("rejected", name or "unknown", reason="unavailable")
            reply = error_reply(ServiceUnavailable(f"temporarily unavailable ({type(exc).__name__})"))
            return Outcome(reply, name, tenant_id, error="unavailable")

    def _count(self, outcome: Outcome) -> None:
        """The report's per-tenant counts (huiliu.reports.ingest_counts): accepted events, and
        refusals of a request whose tenant exists — found while answering it, or, for a body refused
        before the tenant was looked up (too large, undecodable) on a hook route, through the
        directory's cache (unknown tenants are cached too)."""
        tenant = self._resolved
        if tenant is None and outcome.error and outcome.error != "not_found" and outcome.tenant_id:
            try:
                self.directory.settings(outcome.tenant_id)
                tenant = outcome.tenant_id
            except Exception:  # unknown tenant, or the directory is unavailable: not counted per tenant
                tenant = None
        at = self.clock()
        self.counts.record(
            tenant, outcome.connector, at, accepted=len(outcome.accepted), rejected=outcome.error
        )
        self.counts.request_done(at)

    # -- steps ---------------------------------------------------------------------------------
    def _ingest(
        self,
        request: HttpRequest,
        name: str,
        tenant_id: str | None,
        now: datetime,
        force: bool,
        raw_ref: str | None,
        correlation_id: str,
    ) -> Outcome:
        if len(request.body) > self.max_body_bytes:
            raise PayloadTooLarge(f"body larger than {self.max_body_bytes} bytes")
        decoded = self._decode(request, name)
        hook = request.path.startswith("/v1/hooks/")
        if tenant_id is None:
            tenant_id = self._tenant_for_write_key(decoded)
        # Segment's own routes authenticate by write key; its hooks route checks the key per tenant.
        segment_hook = name == "segment" and hook
        tenant = self._tenant(tenant_id, name, with_secrets=name != "segment" or segment_hook)
        connector = self.connector(name)
        bind_correlation(None, tenant_id=tenant_id, connector=name)
        auth = self._authenticate(connector, decoded, tenant, now, hook=hook, replay=raw_ref is not None)
        if auth.replay_guard and raw_ref is None and not force:
            key, digest = auth.replay_guard
            if not self.dedupe.bind(key, digest, now, REPLAY_GUARD_SECONDS):
                exc = ReplayedSignature("this signature was already used with another body")
                raise HiddenAuthFailure(exc.message, reason=exc.reason) if hook else exc
        result = connector.translate(decoded, tenant, now, auth)
        if not result.ingest:
            return Outcome(result.reply, name, tenant_id)
        many = len(result.events) > 1
        details: dict[int, dict[str, Any]] = {}
        for index, event in enumerate(result.events):
            # what later steps can carry (bus entry, DynamoDB item): a 4xx now, not a 5xx or a
            # dead letter later. The correlation id is part of what gets published; the checked
            # detail is what gets published (raw_ref added), so the event is serialised once.
            event.correlation_id = correlation_id
            details[id(event)] = check_event(event, f"events[{index}]" if many else "")
        # Segment requests carry no signature: archive them decoded (so a body writeKey can be removed).
        archived = decoded if name == "segment" else request
        return self._deliver(archived, result, name, tenant_id, now, force, raw_ref, correlation_id, details)

    def _authenticate(
        self,
        connector: Connector,
        request: HttpRequest,
        tenant: TenantContext,
        now: datetime,
        *,
        hook: bool,
        replay: bool,
    ) -> Authenticated:
        """Verify the signature over the raw request before anything else reads the body.

        On a hook route the tenant is named in the path, so any failure here is answered exactly
        like an unknown tenant (404 ``not_found``); the real reason stays in logs and metrics.
        """
        try:
            if connector.name == "segment" and hook and not replay:
                self._check_hook_write_key(request, tenant)
            return connector.authenticate(request, tenant, now)
        except HuiliuError as exc:
            if not hook or isinstance(exc, NotFound):
                raise
            raise HiddenAuthFailure(exc.message, reason=exc.reason) from exc

    def _deliver(
        self,
        request: HttpRequest,
        result: ConnectorResult,
        name: str,
        tenant_id: str,
        now: datetime,
        force: bool,
        raw_ref: str | None,
        correlation_id: str,
        details: dict[int, dict[str, Any]] | None = None,
    ) -> Outcome:
        by_key: dict[str, CanonicalEvent] = {}
        in_request = 0
        for event in result.events:
            event.correlation_id = correlation_id
            if event.dedupe_key in by_key:  # same message id twice in one request: a duplicate
                in_request += 1
                continue
            by_key[event.dedupe_key] = event
        keys = list(by_key)
        done: list[str] = []
        busy: list[str] = []
        if force:
            new_keys = keys
        else:
            claim = self.dedupe.claim(keys, now) if keys else None
            new_keys = claim.new if claim else []
            done, busy = (claim.done, claim.busy) if claim else ([], [])
        fresh = [by_key[k] for k in new_keys]
        stale = False
        outcome = Outcome(result.reply, name, tenant_id, duplicates=len(done) + in_request)
        try:
            if fresh and result.version_key and result.version is not None and not force:
                stale = not self.dedupe.advance_version(result.version_key, result.version, now)
            if fresh and not stale:
                outcome.raw_ref = self._archive(
                    request, result, name, tenant_id, now, raw_ref, correlation_id
                )
                for event in fresh:
                    event.raw_ref = outcome.raw_ref
                self._publish(fresh, details or {})
        except PartialPublishFailed as exc:
            # Keep what EventBridge took (a retry must not publish it again); free only the rest.
            failed = {new_keys[i] for i in exc.failed if i < len(new_keys)}
            if not force:
                delivered = [k for k in new_keys if k not in failed]
                if delivered:
                    self.dedupe.complete(delivered, now)
                self.dedupe.release(sorted(failed))
            self.metrics.count("accepted", name, len(new_keys) - len(failed))
            raise
        except BaseException:
            if not force and new_keys:
                self.dedupe.release(new_keys)
            raise
        if fresh and not stale:
            outcome.accepted = fresh
        if new_keys and not force:
            self.dedupe.complete(new_keys, now)
        if stale:
            outcome.duplicates += len(fresh)
            self.metrics.count("duplicates", name, len(fresh), reason="stale_version")
        self.metrics.count("accepted", name, len(outcome.accepted))
        self.metrics.count("duplicates", name, len(done))
        self.metrics.count("duplicates", name, in_request, reason="duplicate_in_request")
        logger.debug(
            "ingested",
            extra={"accepted": len(outcome.accepted), "duplicates": outcome.duplicates, "busy": len(busy)},
        )
        if busy:
            raise ServiceUnavailable(
                "an earlier delivery of this message is still in progress", reason="in_progress"
            )
        return outcome

    def _archive(
        self,
        request: HttpRequest,
        result: ConnectorResult,
        name: str,
        tenant_id: str,
        now: datetime,
        raw_ref: str | None,
        correlation_id: str,
    ) -> str:
        if raw_ref is not None:  # a replay: the archive already holds this request
            return raw_ref
        delivery = result.delivery_id or request.request_id or uuid.uuid4().hex
        key = archive_key(tenant_id, name, now, delivery)
        record = archive_record(
            without_write_key(request) if name == "segment" else request,
            tenant_id=tenant_id,
            connector=name,
            received_at=now,
            correlation_id=correlation_id,
        )
        self.archive.put(key, record)
        return key

    def _publish(self, events: list[CanonicalEvent], details: dict[int, dict[str, Any]]) -> None:
        """PutEvents; ``details`` are the checked bus details by ``id(event)`` (serialised once)."""
        detail_type = DetailType.EVENT_INGESTED.value
        out = []
        for event in events:
            detail = details.get(id(event))
            if detail is None:
                detail = event.model_dump(mode="json")
            else:
                detail["raw_ref"] = event.raw_ref
            out.append(OutgoingEvent(BUS_SOURCE, detail_type, detail))
        self.publisher.publish(out)

    # -- helpers -------------------------------------------------------------------------------
    def connector(self, name: str) -> Connector:
        found = self._connectors.get(name)
        if found is None:
            module, _, attr = CONNECTORS[name].partition(":")
            found = getattr(import_module(module), attr)()
            self._connectors[name] = found
        return found

    def _decode(self, request: HttpRequest, connector: str = "") -> HttpRequest:
        encoding = (request.header("content-encoding") or "identity").strip().lower()
        if encoding in ("identity", "") and connector == "segment" and request.body[:2] == GZIP_MAGIC:
            # Segment routes decide by the body, not the labels: some official clients send gzip
            # without Content-Encoding (or labelled form-urlencoded), and Segment's API takes it.
            encoding = "gzip"
        if encoding in ("identity", ""):
            return request
        if encoding in ("gzip", "x-gzip"):
            body = gunzip(request.body, self.max_body_bytes)
            headers = {k: v for k, v in request.headers.items() if k != "content-encoding"}
            return replace(request, body=body, headers=headers)
        raise UnsupportedMediaType(
            f"unsupported content-encoding {encoding!r}", reason="unsupported_encoding"
        )

    def _tenant_for_write_key(self, request: HttpRequest) -> str:
        tenant_id = self.directory.tenant_for_write_key(segment_write_key(request))
        if tenant_id is None:
            raise Unauthorized("unknown write key", reason="invalid_write_key")
        return tenant_id

    def _check_hook_write_key(self, request: HttpRequest, tenant: TenantContext) -> None:
        expected = tenant.secrets.segment.write_key if tenant.secrets.segment else ""
        given = segment_write_key(request)
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("unknown write key", reason="invalid_write_key")

    def _tenant(self, tenant_id: str, connector: str, *, with_secrets: bool = True) -> TenantContext:
        settings = self.directory.settings(tenant_id)
        self._resolved = tenant_id  # it exists: a refusal from here on is counted in its report
        if connector not in settings.enabled_connectors:
            raise NotFound("unknown tenant or connector")
        secrets = self.directory.secrets(tenant_id) if with_secrets else TenantSecrets()
        if with_secrets and getattr(secrets, SECRET_ATTRS.get(connector, connector), None) is None:
            raise NotFound("unknown tenant or connector")
        return TenantContext(tenant_id=tenant_id, settings=settings, secrets=secrets)

    @staticmethod
    def _correlation_id(request: HttpRequest) -> str:
        given = request.header(CORRELATION_HEADER)
        if given and _CORRELATION.match(given):
            return given
        return request.request_id or uuid.uuid4().hex


def build_pipeline(settings: Any | None = None) -> IngestPipeline:
    """The production pipeline: DynamoDB, S3, SQS and Secrets Manager behind lazy clients.

    Canonical events go straight to identity's queue (its only consumer) and are deduplicated by
    identity's processed marker, not by a write per event here (docs/cost.md).
    """
    from huiliu.bus import SqsPublisher
    from huiliu.ingest.archive import FirehoseArchive
    from huiliu.ingest.idempotency import DynamoDedupeStore, IdentityMarkerDedupe
    from huiliu.ingest.metrics import PowertoolsIngestMetrics
    from huiliu.reports.ingest_counts import IngestCounts
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantDirectory, TenantRepository

    settings = settings or get_settings()
    directory = TenantDirectory(
        TenantRepository(settings.tenants_table),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
        cache_seconds=settings.config_cache_seconds,
    )
    return IngestPipeline(
        directory=directory,
        dedupe=IdentityMarkerDedupe(DynamoDedupeStore(settings.idempotency_table)),
        archive=FirehoseArchive(settings.raw_archive_stream, settings.raw_bucket),
        publisher=SqsPublisher(settings.identity_queue_url),
        metrics=PowertoolsIngestMetrics(),
        max_body_bytes=settings.max_body_bytes,
        counts=IngestCounts(SqsPublisher(settings.reports_queue_url).publish)
        if settings.reports_queue_url
        else None,
    )
