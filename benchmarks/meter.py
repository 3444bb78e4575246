"""The cost meter: every AWS request a local-runtime run makes, priced per stage and per service.

How it counts
-------------
* **Requests** — botocore event hooks (``before-parameter-build`` / ``after-call``) on every client the
  run uses (the cached ``huiliu.aws`` clients, including the SQS pollers that stand in for Lambda's
  event source mappings). Each call is attributed to the stage of the function that made it: the
  function being invoked in that thread (or, for helper threads, the one invocation in progress —
  the local runtime runs one at a time); calls of a ``poll-<Function>`` thread are that function's
  event source mapping (non-empty receives, deletes, visibility changes; idle long-polls are a fixed
  monthly cost and are left out). Calls of the driving thread (setup, drain) are not counted.
* **DynamoDB capacity** — from item sizes by DynamoDB's rules (the emulator reports none): reads
  ``ceil(size / 4 KB)`` per item (a missing item still costs one unit), half for eventually
  consistent reads, Query/Scan on the summed size; writes ``ceil(max(old, new) / 1 KB)`` (a failed
  condition still costs the old size, minimum 1), x2 inside ``TransactWriteItems``, plus one write
  per global secondary index entry the item adds, changes or removes (a KEYS_ONLY index whose
  keys stay is not written). Old item sizes are read
  through a separate, unhooked client before each write.
* **Derived, not requests** — API Gateway (one request per HTTP call routed to a function, per
  512 KB), Lambda (invocations and GB-seconds from the template's memory size and the measured
  duration), EventBridge → SQS deliveries (each PutEvents entry matched against the template's
  rules; an SQS target costs one SQS request, billed to the consuming stage; a log-group target
  costs CloudWatch Logs ingestion, billed to ``ops``), SNS → SQS deliveries (each published message
  matched against the template's subscriptions and their filter policies: free, counted as
  ``deliveries`` of the consuming stage), Firehose ingestion (5 KB steps per record).
* **Logs and traces** — every byte a handler writes to stdout during its invocation (Powertools'
  JSON log lines, EMF metric lines) is CloudWatch Logs ingestion, plus 26 bytes per log event, plus
  Lambda's START/END/REPORT lines unless the function's ``LoggingConfig`` raises its system log level
  to WARN. The handlers log at the **prod** stage's level (``StageConfig`` in the template) while
  metered, not the local stage's DEBUG. A function with ``Tracing: Active`` records an X-Ray trace
  for ~5 % of its invocations (the default sampling rule at production rates, ``pricing.py``).
* **SNS** — each Publish / PublishBatch request is billed per 64 KB chunk of its payload (message
  bodies and attributes of the whole batch), to the publishing stage; SMS publishes (a phone
  number) are a provider price and left out, like SES's.

Adding a stage's rows
---------------------
Nothing to do for attribution: a function's stage is its ``POWERTOOLS_SERVICE_NAME`` in
``template.yaml``, so segments/journeys/notify calls appear under their own stage as soon as their
functions make them. To price a new path, add a :class:`Workload` to ``WORKLOADS`` in
``benchmarks/bench_cost.py`` (``setup`` runs unmetered: create a segment or journey; ``drive`` sends
the metered traffic and returns how many events it represents), and optionally a ``Target``.
Prices live in ``benchmarks/pricing.py`` only. See docs/cost.md.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks import pricing

# Typical in-region latency of one call (ms), added to a handler's CPU time for its billed duration.
LATENCY_MS = {
    "dynamodb": 6,
    "s3": 25,
    "events": 20,
    "sns": 15,
    "sqs": 8,
    "firehose": 15,
    "secretsmanager": 20,
}

# -- DynamoDB item size and capacity (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
#    CapacityUnitCalculations.html) ------------------------------------------------------------------------


def attr_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attr_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(attr_size(v) + 1 for v in raw)
    if kind == "SS":
        return sum(len(x.encode()) for x in raw)
    if kind == "BS":
        return sum(len(x) for x in raw)
    return sum(attr_size({"N": x}) for x in raw)  # NS


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(k.encode()) + attr_size(v) for k, v in item.items())


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2


def write_units(size: int, *, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 1024))
    return 2.0 * units if transactional else float(units)


# -- EventBridge rule matching (the subset of event patterns template.yaml uses) ---------------------------


def _match_value(pattern: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for want in pattern:
        for got in values:
            if isinstance(want, dict):
                if "prefix" in want and isinstance(got, str) and got.startswith(want["prefix"]):
                    return True
                if "anything-but" in want:
                    but = want["anything-but"]
                    if got not in (but if isinstance(but, list) else [but]):
                        return True
                if want.get("exists") is True and got is not None:
                    return True
            elif want == got:
                return True
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for key, want in pattern.items():
        got = event.get(key)
        if isinstance(want, dict):
            if not isinstance(got, dict) or not matches(want, got):
                return False
        elif not _match_value(want, got):
            return False
    return True


@dataclass(frozen=True)
class RuleTarget:
    rule: str
    pattern: dict[str, Any]
    kind: str  # sqs | logs | other
    queue: str | None  # logical id of the SQS target
    bus: str  # logical id of the bus, or "default"
    template: str | None = None  # an InputTransformer's template: what is delivered instead


def template_rules(template: dict[str, Any]) -> list[RuleTarget]:
    """Rules → targets straight from template.yaml (CloudFormation intrinsics reduced to logical ids)."""
    out = []
    for logical, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Events::Rule":
            continue
        props = res.get("Properties", {})
        bus_ref = props.get("EventBusName")
        bus = bus_ref.get("Ref") if isinstance(bus_ref, dict) else (bus_ref or "default")
        for target in props.get("Targets", []):
            arn = target.get("Arn")
            ref = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
            ref_logical = (ref[0] if isinstance(ref, list) else str(ref).split(".")[0]) if ref else None
            kind = "other"
            if ref_logical:
                rtype = template["Resources"].get(ref_logical, {}).get("Type", "")
                kind = {"AWS::SQS::Queue": "sqs", "AWS::Logs::LogGroup": "logs"}.get(rtype, "other")
            transformer = target.get("InputTransformer") or {}
            out.append(
                RuleTarget(
                    logical,
                    props.get("EventPattern", {}),
                    kind,
                    ref_logical if kind == "sqs" else None,
                    bus,
                    transformer.get("InputTemplate"),
                )
            )
    return out


@dataclass(frozen=True)
class SubscriptionTarget:
    subscription: str
    topic: str  # logical id of the topic
    queue: str | None  # logical id of the SQS endpoint
    filter_policy: dict[str, Any] | None


def template_subscriptions(template: dict[str, Any]) -> list[SubscriptionTarget]:
    """SNS subscriptions straight from template.yaml (intrinsics reduced to logical ids)."""

    def logical(value: Any) -> str | None:
        if isinstance(value, dict) and "Ref" in value:
            return str(value["Ref"])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            ref = value["Fn::GetAtt"]
            return str(ref[0] if isinstance(ref, list) else str(ref).split(".")[0])
        return None

    out = []
    for name, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::SNS::Subscription":
            continue
        props = res.get("Properties", {})
        out.append(
            SubscriptionTarget(
                name,
                logical(props.get("TopicArn")) or "",
                logical(props.get("Endpoint")),
                props.get("FilterPolicy"),
            )
        )
    return out


def attributes_match(policy: dict[str, Any] | None, attributes: dict[str, Any]) -> bool:
    """SNS attribute filtering, as the emulator applies it (the local runtime refuses any operator
    it would not match exactly as SNS does: infra/huiliu_infra/local/support.py)."""
    if not policy:
        return True
    from moto.sns.utils import FilterPolicyMatcher

    converted = {
        name: {"Type": a["DataType"], "Value": a.get("StringValue", a.get("BinaryValue"))}
        for name, a in attributes.items()
    }
    return bool(FilterPolicyMatcher(policy, "MessageAttributes").matches(converted, ""))


def queues_reached(template: dict[str, Any], event: Any) -> set[str]:
    """Logical ids of the queues an OutgoingEvent reaches on the wire huiliu.bus routes it to."""
    from huiliu.bus import SNS, routing_attributes, wire_of

    if wire_of(event.detail_type) == SNS:
        attributes = routing_attributes(event)
        return {
            s.queue
            for s in template_subscriptions(template)
            if s.queue and attributes_match(s.filter_policy, attributes)
        }
    envelope = {"source": event.source, "detail-type": event.detail_type, "detail": event.detail}
    return {
        r.queue
        for r in template_rules(template)
        if r.kind == "sqs" and r.queue and r.bus != "default" and matches(r.pattern, envelope)
    }


# -- the ledger --------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Quantities per (stage, service, item): requests, units, bytes, seconds — priced at the end."""

    rows: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stage: str, service: str, item: str, quantity: float) -> None:
        with self.lock:
            self.rows[(stage, service, item)] += quantity

    def call(self, stage: str, service: str, operation: str) -> None:
        with self.lock:
            self.calls[(stage, service, operation)] += 1

    def clear(self) -> None:
        with self.lock:
            self.rows.clear()
            self.calls.clear()


# Price of one unit of each ledger item (the item names are the pricing keys).
def cost_of(item: str, quantity: float) -> float:
    return quantity * pricing.price(item)


class Meter:
    """Attach to a started :class:`LocalRuntime`; ``with meter.measuring(): ...``; then ``report()``."""

    def __init__(self, runtime: Any, template: dict[str, Any]) -> None:
        import boto3

        self.runtime = runtime
        self.ledger = Ledger()
        self.driver = threading.get_ident()
        self.enabled = False
        self._local = threading.local()
        self._current: str | None = None
        dep = runtime.deployment
        self.stage_of = {
            logical: spec.env.get("POWERTOOLS_SERVICE_NAME", logical)
            for logical, spec in dep.functions.items()
        }
        self.memory_mb = {logical: spec.memory for logical, spec in dep.functions.items()}
        self.tracing, self.platform_logs = function_logging(template, list(dep.functions))
        self.log_level = prod_log_level(template)
        self.consumer_of_queue = {m.queue: self.stage_of[m.function] for m in dep.mappings}
        self.rules = template_rules(template)
        self.subscriptions = template_subscriptions(template)
        self.bus_logical = {name: logical for logical, name in dep.buses.items()}
        self.bus_logical.update({f"arn:aws:events:{dep.region}": "default"})
        self.table_logical = {name: logical for logical, name in dep.tables.items()}
        # An unhooked client: reads old item sizes and index layouts without being counted.
        self._peek = boto3.session.Session().client(
            "dynamodb", region_name=dep.region, endpoint_url=runtime.endpoint
        )
        self._indexes: dict[str, list[tuple[str, str | None, str]]] = {}
        self._hooked: set[int] = set()
        self._wrap_invoke()
        self.hook_clients()

    # -- attaching ---------------------------------------------------------------------------------
    def hook_clients(self) -> None:
        """Register on every cached huiliu.aws client and on the session for clients built later."""
        from huiliu import aws

        for events in aws.event_emitters():
            if id(events) in self._hooked:
                continue
            self._hooked.add(id(events))
            events.register("before-parameter-build", self._before)
            events.register("after-call", self._after)

    def _wrap_invoke(self) -> None:
        from huiliu_infra.local import runtime as runtime_module

        runtime = self.runtime
        original = runtime.invoke
        meter = self
        # The handler runs under the runtime's invoke lock: mark it current there (helper threads
        # it starts, e.g. parallel conditional puts, are then attributed to it).
        load = runtime_module.load_handler

        def load_handler(spec: Any) -> Any:
            handler = load(spec)

            def run(event: Any, context: Any) -> Any:
                meter._current = spec.logical
                try:
                    return handler(event, context)
                finally:
                    meter._current = None

            return run

        runtime_module.load_handler = load_handler

        def invoke(function: str, event: Any) -> Any:
            meter._local.function = function
            meter._local.waits = 0.0
            started = time.thread_time()
            out = _CountingStream(sys.stdout)
            sys.stdout = out  # type: ignore[assignment]
            try:
                return original(function, event)
            finally:
                if sys.stdout is out:
                    sys.stdout = out.inner
                # Billed duration = the handler thread's own CPU time + a typical AWS latency per call
                # it made (the emulator runs in this process on a shared machine: its wall time says
                # nothing about Lambda's).
                seconds = time.thread_time() - started + meter._local.waits
                meter._local.function = None
                meter._lambda(function, event, seconds)
                meter._logs(function, out)

        runtime.invoke = invoke

    @contextmanager
    def measuring(self) -> Iterator[None]:
        from huiliu.observability import logger

        self.hook_clients()
        self.enabled = True
        level = logger.log_level
        logger.setLevel(self.log_level)  # what production logs, not the local stage's DEBUG
        try:
            yield
        finally:
            self.enabled = False
            logger.setLevel(level)

    # -- attribution -------------------------------------------------------------------------------
    def _actor(self) -> tuple[str, bool] | None:
        """(stage, is_event_source_mapping) of the running call, or None for the harness."""
        function = getattr(self._local, "function", None)
        if function:
            return self.stage_of.get(function, function), False
        name = threading.current_thread().name
        if name.startswith("poll-"):
            logical = name[5:]
            return self.stage_of.get(logical, logical), True
        if threading.get_ident() == self.driver or name == "scheduler":
            # the harness (setup, drain) and the runtime's own work outside invocations (the
            # Firehose emulator delivering a buffer: one PUT per 60 s buffer, not per event)
            return None
        if self._current:
            return self.stage_of.get(self._current, self._current), False
        return "unattributed", False

    # -- hooks -------------------------------------------------------------------------------------
    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **kwargs: Any) -> None:
        if "huiliu_meter" in context:
            return  # a client built after the session was hooked carries the hooks twice
        extra: dict[str, Any] = {}
        if self.enabled and model.service_model.service_name == "dynamodb":
            extra = self._dynamo_before(model.name, params)
        context["huiliu_meter"] = (params, extra)

    def _after(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **kwargs: Any
    ) -> None:
        entry = context.pop("huiliu_meter", None)
        if entry is None or not self.enabled:
            return
        params, extra = entry
        if not self.enabled:
            return
        actor = self._actor()
        if actor is None:
            return
        stage, esm = actor
        service = model.service_model.service_name
        op = model.name
        failed = bool(parsed.get("Error")) or (getattr(http_response, "status_code", 200) >= 300)
        if esm and service == "sqs" and op == "ReceiveMessage" and not parsed.get("Messages"):
            return  # an idle long-poll: a fixed monthly cost of the mapping, not per event
        self.ledger.call(stage, service, op)
        if not esm and getattr(self._local, "function", None):
            self._local.waits += LATENCY_MS.get(service, 10) / 1000
        handler = getattr(self, f"_{service.replace('-', '_')}", None)
        if handler is not None:
            handler(stage, op, params, parsed, extra, failed)

    # -- per service -------------------------------------------------------------------------------
    def _lambda(self, function: str, event: Any, seconds: float) -> None:
        if not self.enabled:
            return
        stage = self.stage_of.get(function, function)
        self.ledger.add(stage, "lambda", "lambda.request", 1)
        gb_s = math.ceil(seconds * 1000) / 1000 * self.memory_mb.get(function, 128) / 1024
        self.ledger.add(stage, "lambda", "lambda.gb_second_arm", gb_s)
        if isinstance(event, dict) and isinstance(event.get("requestContext"), dict):
            body = event.get("body") or ""
            size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
            self.ledger.add(
                stage,
                "apigateway",
                "apigateway.http_request",
                max(1, math.ceil(size / pricing.APIGATEWAY_CHUNK)),
            )

    def _logs(self, function: str, out: _CountingStream) -> None:
        if not self.enabled:
            return
        stage = self.stage_of.get(function, function)
        platform = pricing.LAMBDA_PLATFORM_LOG_BYTES if self.platform_logs.get(function, True) else 0
        billed = out.bytes + out.lines * pricing.LOG_EVENT_OVERHEAD + platform
        self.ledger.add(stage, "logs", "logs.gb_ingested", billed / pricing.GB)
        if self.tracing.get(function):
            self.ledger.add(stage, "xray", "xray.trace_recorded", pricing.XRAY_SAMPLED_FRACTION)

    def _sqs(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        if op == "SendMessage":
            size = len(params.get("MessageBody", "").encode())
        elif op == "SendMessageBatch":
            size = sum(len(e.get("MessageBody", "").encode()) for e in params.get("Entries", []))
        elif op == "ReceiveMessage":
            size = sum(len(m.get("Body", "").encode()) for m in parsed.get("Messages", []))
        else:
            size = 0
        self.ledger.add(stage, "sqs", "sqs.request", max(1, math.ceil(size / pricing.SQS_CHUNK)))

    def _s3(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        if op in ("GetObject", "HeadObject", "SelectObjectContent"):
            self.ledger.add(stage, "s3", "s3.get_request", 1)
        elif op.startswith(("Delete",)):
            pass  # DELETE requests are free
        else:
            self.ledger.add(stage, "s3", "s3.put_request", 1)

    def _events(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        if op != "PutEvents":
            return
        results = parsed.get("Entries") or []
        for i, entry in enumerate(params.get("Entries", [])):
            if i < len(results) and results[i].get("ErrorCode"):
                continue
            detail = entry.get("Detail", "")
            size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
            chunks = max(1, math.ceil(size / pricing.EVENTBRIDGE_CHUNK))
            self.ledger.add(stage, "eventbridge", "eventbridge.event", chunks)
            bus = self.bus_logical.get(entry.get("EventBusName", "default"), "default")
            event = {
                "source": entry.get("Source"),
                "detail-type": entry.get("DetailType"),
                "detail": json.loads(detail) if detail else {},
            }
            for target in self.rules:
                if target.bus != bus or not matches(target.pattern, event):
                    continue
                if target.kind == "sqs" and target.queue:
                    consumer = self.consumer_of_queue.get(target.queue, "unconsumed")
                    self.ledger.add(consumer, "sqs", "sqs.request", chunks)
                    self.ledger.add(consumer, "sqs", "deliveries", 1)
                elif target.kind == "logs":
                    # an InputTransformer delivers its template (field values ~40 bytes each)
                    delivered = len(target.template) + 200 if target.template else size
                    self.ledger.add("ops", "logs", "logs.gb_ingested", (delivered + 26) / pricing.GB)

    def _sns(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        if op == "Publish":
            if params.get("PhoneNumber"):
                return  # an SMS: the provider's per-message price, not metered (like SES)
            entries = [params]
            published = [] if failed else [params]
        elif op == "PublishBatch":
            entries = params.get("PublishBatchRequestEntries", [])
            ok = {r.get("Id") for r in parsed.get("Successful") or []}
            published = [e for e in entries if e.get("Id") in ok]
        else:
            return
        # SNS bills each 64 KB chunk of a request's payload (bodies and attributes) as one request.
        size = sum(_sns_entry_size(e) for e in entries)
        self.ledger.add(stage, "sns", "sns.request", max(1, math.ceil(size / pricing.SNS_CHUNK)))
        for entry in published:
            attributes = entry.get("MessageAttributes") or {}
            for sub in self.subscriptions:
                if sub.queue and attributes_match(sub.filter_policy, attributes):
                    consumer = self.consumer_of_queue.get(sub.queue, "unconsumed")
                    # free (SNS → SQS deliveries); the consumer's receives are its own SQS requests
                    self.ledger.add(consumer, "sqs", "sns.sqs_delivery", 1)
                    self.ledger.add(consumer, "sqs", "deliveries", 1)

    def _firehose(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        records = [params["Record"]] if op == "PutRecord" else params.get("Records", [])
        for record in records:
            data = record.get("Data", b"")
            size = len(data if isinstance(data, bytes | bytearray) else str(data).encode())
            billed = max(1, math.ceil(size / pricing.FIREHOSE_RECORD_STEP)) * pricing.FIREHOSE_RECORD_STEP
            self.ledger.add(stage, "firehose", "firehose.gb_ingested", billed / pricing.GB)

    def _secretsmanager(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        self.ledger.add(stage, "secretsmanager", "secretsmanager.api_call", 1)

    # -- DynamoDB ----------------------------------------------------------------------------------
    def _index_keys(self, table: str) -> list[tuple[str, str | None, str]]:
        if table not in self._indexes:
            desc = self._peek.describe_table(TableName=table)["Table"]
            keys = []
            for index in desc.get("GlobalSecondaryIndexes", []):
                schema = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
                projection = index.get("Projection", {}).get("ProjectionType", "ALL")
                if projection == "INCLUDE":  # "INCLUDE:a,b": the attributes the entry carries
                    projection += ":" + ",".join(index["Projection"].get("NonKeyAttributes", []))
                keys.append((schema["HASH"], schema.get("RANGE"), projection))
            self._indexes[table] = keys
        return self._indexes[table]

    def _old(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._peek.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        desc_keys = self._table_key(table)
        return {k: item[k] for k in desc_keys if k in item}

    def _table_key(self, table: str) -> list[str]:
        cache = self.__dict__.setdefault("_key_cache", {})
        if table not in cache:
            desc = self._peek.describe_table(TableName=table)["Table"]
            cache[table] = [k["AttributeName"] for k in desc["KeySchema"]]
        return cache[table]

    def _dynamo_before(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        """Old items (before the write) for every item a write call touches."""
        writes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, bool, str]] = []
        if op == "PutItem":
            table, item = params["TableName"], params["Item"]
            writes.append((table, self._old(table, self._key_of(table, item)), item, False, "put"))
        elif op in ("DeleteItem", "UpdateItem"):
            table = params["TableName"]
            writes.append((table, self._old(table, params["Key"]), None, False, op))
        elif op == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for req in requests:
                    if "PutRequest" in req:
                        item = req["PutRequest"]["Item"]
                        writes.append(
                            (table, self._old(table, self._key_of(table, item)), item, False, "put")
                        )
                    else:
                        key = req["DeleteRequest"]["Key"]
                        writes.append((table, self._old(table, key), None, False, "DeleteItem"))
        elif op == "BatchExecuteStatement":
            # PartiQL writes (journeys commits its tick transitions this way): each UPDATE / DELETE
            # statement is billed as the UpdateItem / DeleteItem it stands for (not transactional).
            for statement in params.get("Statements", []):
                target = _statement_target(statement, self._table_key)
                if target is None:
                    writes.append(("", None, None, False, "unpriced"))
                    continue
                table, key, kind = target
                writes.append((table, self._old(table, key), key, False, kind))
        elif op == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                table = body["TableName"]
                if kind == "Put":
                    item = body["Item"]
                    writes.append((table, self._old(table, self._key_of(table, item)), item, True, "put"))
                else:
                    writes.append((table, self._old(table, body["Key"]), None, True, kind))
        return {"writes": writes}

    def _dynamodb(
        self, stage: str, op: str, params: dict[str, Any], parsed: dict[str, Any], extra: Any, failed: bool
    ) -> None:
        rru = "dynamodb.read_request_unit"
        if op == "GetItem":
            size = item_size(parsed.get("Item"))
            self.ledger.add(
                stage, "dynamodb", rru, read_units(size, consistent=bool(params.get("ConsistentRead")))
            )
        elif op == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                found = parsed.get("Responses", {}).get(table, [])
                unprocessed = len(parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
                consistent = bool(request.get("ConsistentRead"))
                units = sum(read_units(item_size(i), consistent=consistent) for i in found)
                missing = len(request.get("Keys", [])) - len(found) - unprocessed
                units += max(0, missing) * read_units(0, consistent=consistent)
                self.ledger.add(stage, "dynamodb", rru, units)
        elif op in ("Query", "Scan"):
            size = sum(item_size(i) for i in parsed.get("Items", []))
            self.ledger.add(
                stage, "dynamodb", rru, read_units(size, consistent=bool(params.get("ConsistentRead")))
            )
        elif op == "TransactGetItems":
            for response in parsed.get("Responses", []):
                self.ledger.add(
                    stage,
                    "dynamodb",
                    rru,
                    read_units(item_size(response.get("Item")), consistent=True, transactional=True),
                )
        elif op == "BatchExecuteStatement":
            answers = parsed.get("Responses") or []
            for n, (table, old, key, _transactional, kind) in enumerate((extra or {}).get("writes", [])):
                if kind == "unpriced":
                    continue
                answer = answers[n] if n < len(answers) else {}
                error = (answer.get("Error") or {}).get("Code")
                if error and error != "ConditionalCheckFailed":
                    continue  # throttled / not run: sent again, priced then
                if error or failed:
                    self._price_write(stage, table, old, old, kind, False, True)
                else:
                    new = None if kind == "DeleteItem" else self._old(table, key)
                    self._price_write(stage, table, old, new, kind, False, False)
        elif op in ("PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"):
            unprocessed = parsed.get("UnprocessedItems") or {}
            skip = {json.dumps(r, sort_keys=True, default=str) for reqs in unprocessed.values() for r in reqs}
            for table, old, new, transactional, kind in (extra or {}).get("writes", []):
                if (
                    skip
                    and new is not None
                    and json.dumps({"PutRequest": {"Item": new}}, sort_keys=True, default=str) in skip
                ):
                    continue
                if kind == "UpdateItem" and not failed:
                    new = self._old(table, params["Key"])
                self._price_write(stage, table, old, new, kind, transactional, failed)

    def _price_write(
        self,
        stage: str,
        table: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        kind: str,
        transactional: bool,
        failed: bool,
    ) -> None:
        """One item write: ceil(max(old, new) / 1 KB) units (a failed condition: the old size), plus
        one write per global secondary index entry it adds, changes or removes."""
        wru = "dynamodb.write_request_unit"
        if failed:
            size = item_size(old)
            new = old
        elif kind in ("DeleteItem", "Delete", "ConditionCheck"):
            size = item_size(old)
        else:
            size = max(item_size(old), item_size(new))
        self.ledger.add(stage, "dynamodb", wru, write_units(size, transactional=transactional))
        if kind == "ConditionCheck" or failed:
            return
        after = None if kind in ("DeleteItem", "Delete") else new
        for hash_key, range_key, projection in self._index_keys(table):
            before_key = _index_entry(old, hash_key, range_key)
            after_key = _index_entry(after, hash_key, range_key)
            if before_key is None and after_key is None:
                continue
            carried = _carried(projection, hash_key, range_key, self._table_key(table))
            if before_key == after_key and (
                carried is not None and _pick(old, carried) == _pick(after, carried)
            ):
                continue  # same keys, nothing projected changed: the index is not written
            index_writes = 2 if (before_key and after_key and before_key != after_key) else 1
            entry = after or old
            size = item_size(entry if carried is None else _pick(entry, carried))
            self.ledger.add(stage, "dynamodb", wru, index_writes * write_units(size))

    # -- storage -----------------------------------------------------------------------------------
    def storage_bytes(self) -> dict[str, int]:
        """Bytes at rest now: each table (items + 100 B each; index entries too) and the raw bucket."""
        out: dict[str, int] = {}
        for name, logical in self.table_logical.items():
            total = 0
            indexes = self._index_keys(name)
            for page in self._peek.get_paginator("scan").paginate(TableName=name):
                for item in page.get("Items", []):
                    size = item_size(item) + pricing.DYNAMODB_ITEM_OVERHEAD
                    total += size
                    total += sum(size for h, _r, _p in indexes if h in item)
            out[f"dynamodb:{logical}"] = total
        import boto3

        s3 = boto3.session.Session().client(
            "s3", region_name=self.runtime.deployment.region, endpoint_url=self.runtime.endpoint
        )
        for logical, bucket in self.runtime.deployment.buckets.items():
            total = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                total += sum(o["Size"] for o in page.get("Contents", []))
            out[f"s3:{logical}"] = total
        return out


_PARTIQL_WRITE = re.compile(
    r'^\s*(UPDATE|DELETE\s+FROM)\s+"?([^"\s]+)"?\s+(?:.*?\s)?WHERE\s+(.*?)\s*$', re.IGNORECASE | re.DOTALL
)
_PARTIQL_EQUALS = re.compile(r'^\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*=\s*\?\s*$')


def _statement_target(statement: dict[str, Any], table_key: Any) -> tuple[str, dict[str, Any], str] | None:
    """(table, key, UpdateItem|DeleteItem) of a parameterised PartiQL UPDATE / DELETE whose WHERE is
    a conjunction of ``name = ?`` (the key among them); None for anything else."""
    text = str(statement.get("Statement", ""))
    found = _PARTIQL_WRITE.match(text)
    if found is None:
        return None
    verb, table, where = found.group(1).upper(), found.group(2), found.group(3)
    params = list(statement.get("Parameters") or [])
    before_where = text[: found.start(3)].count("?")
    names = []
    for part in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE):
        equal = _PARTIQL_EQUALS.match(part)
        if equal is None:
            return None
        names.append(equal.group(1))
    if before_where + len(names) != len(params):
        return None
    values = dict(zip(names, params[before_where:], strict=True))
    key = {k: values[k] for k in table_key(table) if k in values}
    if len(key) != len(table_key(table)):
        return None
    return table, key, "UpdateItem" if verb == "UPDATE" else "DeleteItem"


def _sns_entry_size(entry: dict[str, Any]) -> int:
    size = len(str(entry.get("Message", "")).encode())
    for name, attr in (entry.get("MessageAttributes") or {}).items():
        value = attr.get("StringValue", attr.get("BinaryValue", ""))
        size += len(name.encode()) + len(str(attr.get("DataType", "")).encode()) + len(str(value).encode())
    return size


def _carried(projection: str, hash_key: str, range_key: str | None, table_keys: list[str]) -> set[str] | None:
    """The attributes a KEYS_ONLY / INCLUDE index entry holds (the table's and the index's keys, and
    the included attributes); None for ALL (the whole item)."""
    if projection == "ALL":
        return None
    included = projection.partition(":")[2]
    return {*table_keys, hash_key, range_key or hash_key} | {a for a in included.split(",") if a}


def _pick(item: dict[str, Any] | None, names: set[str]) -> dict[str, Any]:
    return {k: v for k, v in (item or {}).items() if k in names}


def _index_entry(item: dict[str, Any] | None, hash_key: str, range_key: str | None) -> Any:
    """The (hash, range) an item has in an index, or None when it is not in the index."""
    if not item or hash_key not in item or (range_key and range_key not in item):
        return None
    return (json.dumps(item[hash_key]), json.dumps(item.get(range_key)) if range_key else None)


def metered_runtime() -> Any:
    """A started local runtime whose handlers log and emit EMF metric lines as in production (the
    meter prices those bytes, at the prod log level; callers capture stdout). Only the local
    runtime's and the emulator's own loggers are quieted (injected crashes and poison are counted
    by the benches, not read from the log)."""
    import logging
    import os

    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    for name in ("huiliu.local", "werkzeug", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from huiliu_infra.local.runtime import LocalRuntime

    runtime = LocalRuntime(http_port=0, aws_port=0, write_state=False, quiet=True, endpoint=None)
    runtime.start()
    return runtime


class _CountingStream:
    """Forwards to ``inner`` and counts what a handler writes: bytes and lines (log events)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8", "replace"))
        self.lines += text.count("\n")
        return int(self.inner.write(text) or 0)

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def function_logging(
    template: dict[str, Any], functions: list[str]
) -> tuple[dict[str, bool], dict[str, bool]]:
    """Per function: is active X-Ray tracing on, and do Lambda's platform lines reach the log group
    (from ``Tracing`` and ``LoggingConfig``, the function's own over ``Globals.Function``)."""
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    resources = template.get("Resources") or {}
    tracing: dict[str, bool] = {}
    platform: dict[str, bool] = {}
    for logical in functions:
        props = (resources.get(logical) or {}).get("Properties") or {}
        mode = props.get("Tracing", globals_.get("Tracing", "PassThrough"))
        tracing[logical] = mode == "Active"
        config = {**(globals_.get("LoggingConfig") or {}), **(props.get("LoggingConfig") or {})}
        json_format = _prod_value(template, config.get("LogFormat")) == "JSON"
        level = str(_prod_value(template, config.get("SystemLogLevel", "INFO"))).upper()
        platform[logical] = not (json_format and level == "WARN")
    return tracing, platform


def prod_log_level(template: dict[str, Any]) -> str:
    """The application log level of the template's ``prod`` stage (``Mappings.StageConfig``)."""
    return str(_prod_value(template, ["StageConfig", {"Ref": "Stage"}, "LogLevel"], find=True)).upper()


def _prod_value(template: dict[str, Any], value: Any, find: bool = False) -> Any:
    """A literal, or a ``!FindInMap [Map, !Ref Stage, Key]`` read for the ``prod`` stage."""
    args = value if find else value.get("Fn::FindInMap") if isinstance(value, dict) else None
    if not isinstance(args, list) or len(args) != 3 or args[1] != {"Ref": "Stage"}:
        return value
    mapping = (template.get("Mappings") or {}).get(args[0]) or {}
    return (mapping.get("prod") or {}).get(args[2])


def priced(ledger: Ledger) -> dict[tuple[str, str], float]:
    """USD per (stage, service) for the quantities in ``ledger``."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for (stage, service, item), quantity in ledger.rows.items():
        if item in pricing.PRICES:
            out[(stage, service)] += cost_of(item, quantity)
    return out
