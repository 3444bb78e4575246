"""Fault injection for the pipeline benchmark — harness only, never a production code path.

Installed on a running :class:`~huiliu_infra.local.runtime.LocalRuntime` (the same way the cost meter
attaches: a wrapper around the handlers the runtime loads and botocore event hooks on the clients):

* **crash mid-batch** — an SQS-fed handler processes the first k records of its batch, then raises:
  the whole batch is redelivered (the first k a second time).
* **throttling** — a random AWS call of a handler answers ``ProvisionedThroughputExceededException``
  (DynamoDB) or ``ThrottlingException`` (other services) through a ``before-send`` hook, so the SDK's
  own retries see it; a smaller share raises out of the SDK (``before-call``: retries exhausted).
* **SQS redelivery** — a batch is handed to the handler twice (at-least-once delivery).
* **a transient provider** — SES ``SendEmail`` answers ``TooManyRequestsException``.
* **overlapping ticks** — a scheduled tick is delivered twice for the same scheduled time, and the
  previous period's tick arrives late after the current one.
* **poison** — messages that are no contract at all, put on a stage's queue: each must reach the
  DLQ with a reason.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

THROTTLE_CODES = {"dynamodb": "ProvisionedThroughputExceededException"}
MAX_RECEIVES = 5  # the consumer queues' maxReceiveCount (template.yaml)
THROTTLED_SERVICES = {"dynamodb", "events", "sqs", "firehose", "s3"}
# notify's send queues: a send holds a claim (lease 120 s on the clock) across the provider call. A
# failure after the provider took the message comes back, in AWS, after the queue's visibility timeout
# (180 s) and finds the lease expired (notify ends it ``unknown_outcome``); the local runtime retries
# after a second of wall time on a clock that has not moved, so the record would meet its own live
# claim five times and be dead-lettered ("InFlight"). No throttle past the SDK's retries is injected
# there (docs/pipeline.md, "what a crash cannot say"); throttles the SDK retries still are.
LEASED_QUEUES = {"NotifyEmailQueue", "NotifySmsQueue", "NotifyWechatQueue", "NotifyWebhookQueue"}


@dataclass
class FaultRates:
    crash: float = 0.05  # per SQS batch
    redeliver: float = 0.05  # per SQS batch
    throttle: float = 0.03  # per AWS call of a handler (retried by the SDK)
    throttle_escape: float = 0.005  # per AWS call of a handler (raised past the SDK's retries)
    provider: float = 0.2  # per SES SendEmail
    overlap_ticks: bool = True
    poison: int = 3  # poisoned messages per consumer queue picked


@dataclass
class FaultCounts:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n


class Faults:
    def __init__(self, runtime: Any, rates: FaultRates, *, seed: int = 7) -> None:
        self.runtime = runtime
        self.rates = rates
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.injected = FaultCounts()
        self.enabled = False
        self._local = threading.local()
        self._hooked: set[int] = set()
        self._wrap_handlers()
        self.hook_clients()

    def _roll(self, p: float) -> bool:
        if not self.enabled or p <= 0:
            return False
        with self.rng_lock:
            return self.rng.random() < p

    # -- handlers -------------------------------------------------------------------------------------
    def _wrap_handlers(self) -> None:
        from huiliu_infra.local import runtime as runtime_module

        faults = self
        load = runtime_module.load_handler
        ticks = {s.function for s in self.runtime.deployment.schedules}
        queues = self.runtime.deployment.queues
        leased = {queues[q].arn for q in LEASED_QUEUES if q in queues}

        def load_handler(spec: Any) -> Any:
            handler = load(spec)

            def run(event: Any, context: Any) -> Any:
                records = event.get("Records") if isinstance(event, dict) else None
                faults._local.inside = True
                faults._local.leased = bool(records) and records[0].get("eventSourceARN") in leased
                try:
                    return faults._run(spec.logical, handler, event, context, spec.logical in ticks)
                finally:
                    faults._local.inside = False
                    faults._local.leased = False

            return run

        runtime_module.load_handler = load_handler

    def _run(self, function: str, handler: Any, event: Any, context: Any, is_tick: bool) -> Any:
        records = event.get("Records") if isinstance(event, dict) else None
        last_receive = records and any(
            int(r.get("attributes", {}).get("ApproximateReceiveCount", 1)) >= MAX_RECEIVES for r in records
        )
        # Not on a record's last receive: a container that dies then leaves SQS's own redrive to move
        # the record, without a reason (docs/pipeline.md, "what a crash cannot say").
        if records and not last_receive and self._roll(self.rates.crash):
            k = self.rng.randrange(len(records))
            if k:
                handler({"Records": records[:k]}, context)
            self.injected.add("crash mid-batch")
            raise RuntimeError(f"injected: {function} crashed after {k} of {len(records)} records")
        result = handler(event, context)
        if records and self._roll(self.rates.redeliver):
            self.injected.add("sqs redelivery (batch twice)")
            result = handler(event, context)
        if is_tick and self.enabled and self.rates.overlap_ticks:
            self.injected.add("tick twice (same scheduled time)")
            handler(event, context)
        return result

    # -- AWS calls ------------------------------------------------------------------------------------
    def hook_clients(self) -> None:
        from huiliu import aws

        for events in aws.event_emitters():
            if id(events) in self._hooked:
                continue
            self._hooked.add(id(events))
            events.register("before-send", self._before_send)
            events.register("before-call", self._before_call)

    def _in_handler(self) -> bool:
        return bool(getattr(self._local, "inside", False))

    def _before_call(self, model: Any, params: Any, **kwargs: Any) -> Any:
        if not self._in_handler():
            return None
        service = model.service_model.service_name
        if service == "sesv2" and model.name == "SendEmail" and self._roll(self.rates.provider):
            self.injected.add("provider transient failure (SES)")
            return _error_response(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
        leased = getattr(self._local, "leased", False)
        if service in THROTTLED_SERVICES and not leased and self._roll(self.rates.throttle_escape):
            code = THROTTLE_CODES.get(service, "ThrottlingException")
            self.injected.add(f"throttle past retries ({service})")
            return _error_response(400, code, "Rate exceeded (injected)")
        return None

    def _before_send(self, request: Any, **kwargs: Any) -> Any:
        if not self._in_handler():
            return None
        service = _service_of(request)
        if service not in THROTTLED_SERVICES or not self._roll(self.rates.throttle):
            return None
        from botocore.awsrequest import AWSResponse

        code = THROTTLE_CODES.get(service, "ThrottlingException")
        self.injected.add(f"throttle retried by SDK ({service})")
        body = json.dumps({"__type": code, "message": "Rate exceeded (injected)"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
        if service in ("sqs",):
            headers["x-amzn-query-error"] = f"{code};Sender"
        if service == "s3":
            body = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            headers = {"Content-Type": "application/xml"}
            return AWSResponse(request.url, 503, headers, _Raw(body))
        return AWSResponse(request.url, 400, headers, _Raw(body))

    # -- fake providers (notify's sink in the local runtime) ----------------------------------------------
    def arm_providers(self, times: int) -> None:
        """WeChat answers "system busy" and Aliyun SMS a 503 for the next ``times`` calls each."""
        sink = getattr(self.runtime, "notify_sink", None)
        if sink is None or not self.enabled:
            return
        sink.fail_next(
            "/wechat/cgi-bin/message", times, status=200, reply={"errcode": -1, "errmsg": "system busy"}
        )
        sink.fail_next("/aliyun", times, status=503, reply={"Code": "ServiceUnavailable", "Message": "busy"})
        self.injected.add("provider transient failure (WeChat, Aliyun) armed", 2 * times)

    # -- ticks ----------------------------------------------------------------------------------------
    def late_ticks(self) -> int:
        """Each schedule's previous period delivered late (after the current one ran)."""
        from datetime import timedelta

        from huiliu_infra.local.runtime import schedule_event

        if not (self.enabled and self.rates.overlap_ticks):
            return 0
        dep = self.runtime.deployment
        fired = 0
        now = self.runtime.clock.now()
        for sched in dep.schedules:
            event = schedule_event(sched, now - timedelta(seconds=sched.seconds), dep.region)
            with contextlib.suppress(Exception):  # a failing late tick is the stage's to survive
                self.runtime.invoke(sched.function, event)
            fired += 1
        self.injected.add("late tick (previous period)", fired)
        return fired

    # -- poison ---------------------------------------------------------------------------------------
    def poison(self, queues: list[str]) -> dict[str, list[str]]:
        """Put messages no stage can parse on these queues; returns the ids planted per queue."""
        from huiliu import aws

        sqs = aws.client("sqs")
        planted: dict[str, list[str]] = {}
        for logical in queues:
            url = self.runtime.deployment.queues[logical].url
            for k in range(self.rates.poison):
                marker = f"poison-{logical}-{k}"
                body = (
                    json.dumps(
                        {
                            "version": "0",
                            "id": marker,
                            "detail-type": "profile.changed",
                            "source": "huiliu.identity",
                            "detail": {"poison": marker},
                        }
                    )
                    if k % 2
                    else f"not json at all: {marker}"
                )
                sqs.send_message(QueueUrl=url, MessageBody=body)
                planted.setdefault(logical, []).append(marker)
        self.injected.add("poisoned messages", sum(len(v) for v in planted.values()))
        return planted


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self.body

    def read(self, *args: Any) -> bytes:
        return self.body


def _service_of(request: Any) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else str(target)
    if target.startswith("DynamoDB_"):
        return "dynamodb"
    if target.startswith("AWSEvents"):
        return "events"
    if target.startswith("AmazonSQS"):
        return "sqs"
    if target.startswith("Firehose"):
        return "firehose"
    auth = request.headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else str(auth)
    for service in ("sqs", "s3", "sesv2", "ses", "dynamodb", "events", "firehose"):
        if f"/{service}/aws4_request" in auth:
            return service
    return ""


def _error_response(status: int, code: str, message: str) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse

    http = AWSResponse("https://injected", status, {}, _Raw(b""))
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return http, parsed
