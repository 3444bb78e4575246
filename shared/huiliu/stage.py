"""The stage runner: one shape for every bus consumer and every scheduled tick.

A stage is a service object; its Lambda handler is built here::

    # functions/segments/app.py
    from huiliu.stage import queue_handler
    handler = queue_handler("segments", build=build_segments_service)

**Queue consumers** (SQS fed by a bus rule): each record's body is an EventBridge event; the runner
picks the typed contract by ``detail-type`` (:mod:`huiliu.contracts`), acknowledges and logs the
types the service does not accept, binds the correlation id, calls ``service.handle(event)`` and
publishes what it returns. What the records of one SQS batch return is published **once, after the
batch** (one publish of up to 10 events per request: on the SNS wire a full batch costs one
PublishBatch, not ten — docs/cost.md); a record whose events could not be published fails and is
redelivered, and the service returns the same events (same ids) again. A record that fails fails
alone (Powertools BatchProcessor, partial batch response); the message is redelivered and, on its
last attempt (``maxReceiveCount``), the runner
moves it to the DLQ itself with a ``failure_reason`` message attribute (:mod:`huiliu.dead_letters`;
``huiliu dlq show`` prints it). A record that can never succeed (a body that is not a valid
contract) is reported as a failure too: it reaches the DLQ with its reason, never silently dropped.

Deduplication: within one container, event ids already handled are remembered (an LRU), so a batch
that carries the same event twice, or a quick redelivery, costs nothing. Across containers the
services are idempotent themselves — version checks, conditional writes, idempotency keys — and
return the same out-events (same derived ``event_id``) when they see an input again, so a republish
is deduplicated downstream. The runner adds no DynamoDB write per event.

**Ticks** (EventBridge Scheduler): the schedule's input is ``{"time": "<aws.scheduler.scheduled-time>"}``
(template.yaml), so AWS and the local runtime hand the tick the same time; ``service.tick(now)``
processes everything due at or before it (a tick that ran late, or missed ticks collapsed by the
local runtime, catch up in one call).

Collaborators are injected with :func:`configure` (tests, the local runtime, benchmarks); the real
ones are built on first use.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from huiliu.bus import OutgoingEvent, PartialPublishFailed, Publisher
from huiliu.observability import bind_correlation, logger, metrics, tracer

if TYPE_CHECKING:  # pydantic (and the contracts) load with the first record, not at cold start
    from pydantic import BaseModel

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Out = Any  # a contract model (BusEvent) or an OutgoingEvent
SEEN_LIMIT = 10_000


@runtime_checkable
class StageService(Protocol):
    """A queue-fed stage: the contracts it accepts and what it does with one event."""

    accepts: tuple[type[BaseModel], ...]

    def handle(self, event: Any) -> Sequence[Out]: ...


@runtime_checkable
class TickService(Protocol):
    """A scheduled stage: process everything due at or before ``now``."""

    def tick(self, now: datetime) -> Sequence[Out]: ...


class BadRecord(ValueError):
    """The record is not a bus event of any contract (it goes to the DLQ with this reason)."""


@dataclass
class _Stage:
    name: str
    build: Callable[[], Any] | None
    service: Any = None
    publisher: Publisher | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # The settings a built (not injected) service was built from: different settings (tests change
    # the environment) rebuild it. Compared by value: the local runtime re-reads the settings when
    # another function ran in between, and that must not cost a warm container its caches.
    built_for: Any = None

    def get_service(self) -> Any:
        if self.service is not None and self.built_for is not None:
            from huiliu.settings import get_settings

            if get_settings() != self.built_for:
                self.service = None
        if self.service is None:
            if self.build is None:
                raise RuntimeError(f"stage {self.name} has no service")
            from huiliu.settings import get_settings

            self.service = self.build()
            self.built_for = get_settings()
        return self.service

    def get_publisher(self) -> Publisher:
        if self.publisher is None:
            from huiliu.bus import bus_publisher

            self.publisher = bus_publisher()
        return self.publisher

    def remember(self, event_id: str) -> None:
        self.seen[event_id] = None
        self.seen.move_to_end(event_id)
        while len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)


_STAGES: dict[str, _Stage] = {}


def configure(
    stage: str,
    *,
    service: Any | None = None,
    publisher: Publisher | None = None,
    build: Callable[[], Any] | None = None,
) -> None:
    """Inject a stage's collaborators (None: built on first use). Forgets the events it has seen."""
    state = _STAGES.setdefault(stage, _Stage(stage, build))
    state.service = service
    state.built_for = None
    state.publisher = publisher
    if build is not None:
        state.build = build
    state.seen.clear()


def stage_state(stage: str) -> _Stage:
    return _STAGES[stage]


def _fresh_slot(stage: str, build: Callable[[], Any] | None) -> _Stage:
    """The stage's one slot, emptied as a new container finds it (no service, publisher or memory).

    One slot object per stage name for the life of the process: a handler module imported again
    (the local runtime reloading handlers, a test importing a function anew) shares it with the
    handlers built before, so :func:`configure` reaches every handler of that stage."""
    state = _STAGES.setdefault(stage, _Stage(stage, build))
    state.build = build
    state.service = None
    state.built_for = None
    state.publisher = None
    state.seen.clear()
    return state


def reset_all() -> None:
    """Empty every stage's slot (a fresh container for all): what the local runtime does on reload."""
    for state in _STAGES.values():
        state.service = None
        state.built_for = None
        state.publisher = None
        state.seen.clear()


def slot(stage: str, build: Callable[[], Any]) -> _Stage:
    """A stage's slot as a library module finds it: created (with ``build``) if no handler or test
    made it yet, otherwise left as it is, so a :func:`configure` made before the module was first
    imported (the admin app imports its routers on their first request) still holds."""
    state = _STAGES.setdefault(stage, _Stage(stage, build))
    if state.build is None:
        state.build = build
    return state


def register(stage: str, build: Callable[[], Any]) -> _Stage:
    """A stage's collaborator slot for a handler that is not a bus consumer (the CSV importer):
    built on first use, injected with :func:`configure`, like every other stage's service."""
    return _fresh_slot(stage, build)


def to_outgoing(items: Sequence[Out]) -> list[OutgoingEvent]:
    out: list[OutgoingEvent] = []
    for item in items:
        if isinstance(item, OutgoingEvent):
            out.append(item)
        else:
            out.append(item.outgoing())  # type: ignore[attr-defined]
    return out


def publish(state: _Stage, items: Sequence[Out]) -> int:
    events = to_outgoing(items)
    if events:
        state.get_publisher().publish(events)
    return len(events)


def parse_record_body(body: str) -> tuple[str, BaseModel]:
    """(detail-type, typed event) of an SQS body holding an EventBridge event."""
    from pydantic import ValidationError

    from huiliu.contracts import UnknownDetailType, parse_detail

    try:
        envelope = json.loads(body)
        detail_type = envelope["detail-type"]
        detail = envelope.get("detail") or {}
        return detail_type, parse_detail(detail_type, detail)
    except (ValueError, KeyError, TypeError, UnknownDetailType, ValidationError) as exc:
        raise BadRecord(f"not a valid bus event: {exc}"[:2000]) from exc


def event_key(event: BaseModel) -> str | None:
    event_id = getattr(event, "event_id", None)
    if event_id:
        return str(event_id)
    dedupe_key = getattr(event, "dedupe_key", None)  # a CanonicalEvent (event.ingested)
    return str(dedupe_key) if dedupe_key else None


def queue_handler(stage: str, build: Callable[[], StageService] | None = None) -> Handler:
    """The Lambda handler of a queue-fed stage (SQS records of bus events, partial batch response).

    Called when the handler module is imported — a new container: it starts with no service, no
    publisher and no memory of events (a local runtime that re-imports handlers gets fresh ones)."""
    # Imported here, not with the module: Powertools' batch utilities load its parser models (~50 ms
    # of a cold start) and the admin API, which uses only the slots, has no batch to process.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    state = _fresh_slot(stage, build)
    processor = BatchProcessor(event_type=EventType.SQS)
    # What this invocation's records returned, published together after the batch.
    outbox: list[_Handled] = []

    def record_handler(record: Any) -> None:
        try:
            handle_record(record)
        except Exception as exc:
            from huiliu.dead_letters import forward_if_last_attempt

            if not forward_if_last_attempt(record, exc, stage):
                raise

    def handle_record(record: Any) -> None:
        try:
            detail_type, event = parse_record_body(record.body)
        except BadRecord as exc:
            logger.error("bad record", extra={"stage": stage, "reason": str(exc)})
            metrics.add_metric(name=f"{stage}_bad_records", unit="Count", value=1)
            raise
        bind_correlation(getattr(event, "correlation_id", None), tenant_id=getattr(event, "tenant_id", None))
        service = state.get_service()
        if not isinstance(event, service.accepts):
            logger.debug("not for this stage", extra={"stage": stage, "detail_type": detail_type})
            metrics.add_metric(name=f"{stage}_ignored", unit="Count", value=1)
            return
        key = event_key(event)
        if key and (key in state.seen or any(h.key == key for h in outbox)):
            logger.info("duplicate event", extra={"stage": stage, "event_id": key})
            metrics.add_metric(name=f"{stage}_duplicates", unit="Count", value=1)
            return
        out = to_outgoing(service.handle(event))
        outbox.append(_Handled(record, key, detail_type, out, getattr(event, "correlation_id", None)))

    def flush() -> list[str]:
        """Publish the batch's events in one go; the SQS message ids of records to fail."""
        events = [e for handled in outbox for e in handled.events]
        failed_events: set[int] = set()
        error: Exception | None = None
        if events:
            try:
                state.get_publisher().publish(events)
            except PartialPublishFailed as exc:
                failed_events, error = set(exc.failed), exc
            except Exception as exc:
                failed_events, error = set(range(len(events))), exc
        failures: list[str] = []
        done: list[dict[str, Any]] = []
        start = 0
        for handled in outbox:
            mine = range(start, start + len(handled.events))
            start += len(handled.events)
            bind_correlation(handled.correlation_id)
            if error is not None and failed_events.intersection(mine):
                from huiliu.dead_letters import forward_if_last_attempt

                if not forward_if_last_attempt(handled.record, error, stage):
                    failures.append(handled.record.message_id)
                continue
            if handled.key:
                state.remember(handled.key)
            done.append(handled.summary())
            metrics.add_metric(name=f"{stage}_handled", unit="Count", value=1)
        if done:
            # One line per batch, not per record: every event id and correlation id is in it (one grep
            # still follows an event), at about a tenth of the log bytes of a line per record —
            # CloudWatch Logs ingestion is billed per byte (docs/cost.md, "function logs").
            logger.info("batch handled", extra={"stage": stage, "records": done})
        return failures

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        outbox.clear()
        try:
            response = dict(
                process_partial_response(
                    event=event, record_handler=record_handler, processor=processor, context=context
                )
            )
            failed = flush()
        finally:
            outbox.clear()
        if failed:
            items: list[Any] = list(response.get("batchItemFailures") or [])  # type: ignore[call-overload]
            items += [{"itemIdentifier": m} for m in failed]
            response["batchItemFailures"] = items
            if len(items) >= len(event.get("Records") or []):
                # every record failed (as BatchProcessor reports it): SQS redelivers the batch
                from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

                raise BatchProcessingError(f"all records failed: their events were not published ({failed})")
        return response

    return handler


@dataclass
class _Handled:
    """A record the service handled; its events wait for the batch's publish."""

    record: Any
    key: str | None
    detail_type: str
    events: list[OutgoingEvent]
    correlation_id: str | None

    def summary(self) -> dict[str, Any]:
        """This record's entry in the batch's log line: what came in, what went out, for whom."""
        entry: dict[str, Any] = {"event_id": self.key, "detail_type": self.detail_type}
        if self.correlation_id:
            entry["correlation_id"] = self.correlation_id
        entry["published"] = sorted({e.detail_type for e in self.events})
        profiles = sorted({str(e.detail["profile_id"]) for e in self.events if e.detail.get("profile_id")})
        if profiles:
            entry["profiles"] = profiles
        return entry


@runtime_checkable
class HttpService(Protocol):
    """An HTTP-fed stage (API Gateway HTTP API, payload v2): one request in, one response out."""

    def respond(self, event: dict[str, Any]) -> dict[str, Any]: ...


def http_handler(stage: str, build: Callable[[], HttpService] | None = None) -> Handler:
    """The Lambda handler of an HTTP-fed stage (ingest's webhooks): the service answers the request.

    The same collaborator slot as the bus stages (:func:`configure`); the same logger/tracer stack.
    A direct call without a Lambda context (tests, tools) skips the context decorators."""
    state = _fresh_slot(stage, build)

    def respond(event: dict[str, Any]) -> dict[str, Any]:
        return state.get_service().respond(event)  # type: ignore[no-any-return]

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    def in_lambda(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return respond(event)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return respond(event) if context is None else in_lambda(event, context)

    return handler


def tick_time(event: dict[str, Any]) -> datetime:
    """The time a schedule asked to process (its input's ``time``; an EventBridge event's too)."""
    raw = event.get("time") if isinstance(event, dict) else None
    if not raw:
        raise BadRecord("the tick has no time (set the schedule's input to the scheduled time)")
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRecord(f"bad tick time {raw!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def tick_handler(stage: str, build: Callable[[], TickService] | None = None) -> Handler:
    """The Lambda handler of a scheduled stage: processes everything due at or before the tick."""
    state = _fresh_slot(stage, build)

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        now = tick_time(event)
        out = state.get_service().tick(now)
        published = publish(state, out)
        logger.info("tick", extra={"stage": stage, "tick": now.isoformat(), "published": published})
        metrics.add_metric(name=f"{stage}_ticks", unit="Count", value=1)
        return {"tick": now.isoformat(), "published": published}

    return handler
