"""The whole pipeline under load and faults (issue 14): one command, three tables.

    .venv/bin/python -m benchmarks.bench_pipeline [--shoppers N] [--rate R] [--probes P] [--no-faults]
    .venv/bin/python -m benchmarks.bench_pipeline --sweep 1,2,3   # latency against the offered rate
    .venv/bin/python -m benchmarks --only pipeline [--quick]

A load generator (``benchmarks/load_mix.py``) drives the local runtime through its public doors only:
the connectors' webhooks, signed the way each source signs (``huiliu_infra.sources``) — new and
returning shoppers across Youzan, WeChat, Shopify and the Segment API, orders with products, noisy
identifiers, duplicates and retries — with the shipped segments (``examples/segments``) and the three
classic journeys (``huiliu journeys apply --examples``) active, plus one no-wait journey of the
benchmark's own (an order receipt by email, transactional) whose sends are the latency probes. The
clock is moved (``runtime.advance``) so the journeys' waits fire.

1. **latency** — for each probe (a new person's first order, paced among the load): from the
   webhook's 200 to notify recording the email as sent (``notification.sent``'s ``occurred_at`` on
   the bus tap, on the same clock), p50 / p95 / p99 at the stated event rate.
2. **cost** — the cost meter (``benchmarks/meter.py``, issue 9) over the same run: every AWS request
   from webhook to message requested (and sent), per stage and per service, per million events;
   the single-webhook path (the load) and the batch path (``/v1/batch``).
3. **faults** — the same load on a fresh runtime with ``benchmarks/faults.py`` installed; the run
   must end with zero lost events (identity's processed marker for every accepted webhook), zero
   duplicate sends (by idempotency key, and by what SES recorded), and every poisoned message in a
   DLQ with a reason.

Nothing here is a production code path: faults are injected by the harness around the handlers the
local runtime loads and by botocore hooks on the clients.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "shared", ROOT / "infra", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from benchmarks.faults import FaultRates, Faults  # noqa: E402
from benchmarks.load_mix import Mix, Webhook  # noqa: E402

LATENCY_TARGET_P99_S = 5.0
COST_TARGET_USD_PER_M = 5.0
SES_REGION = "ap-southeast-1"
PROBE_JOURNEY: dict[str, Any] = {
    "id": "order-receipt",
    "name": "Order receipt (no wait)",
    "description": "Benchmark probe: every order sends a transactional receipt email at once.",
    "trigger": {"event": "Order Completed"},
    "entry": {"policy": "every_time"},
    "instance": {"key": "order_id", "max_concurrent": 50},
    "steps": [
        {
            "id": "receipt",
            "type": "send",
            "channel": "email",
            "template": "order-receipt",
            "purpose": "transactional",
            "priority": 9,
        }
    ],
}
# notify's template format (shared/huiliu/notify/templates.py): the benchmark's own receipt, and the classic
# journeys' templates exactly as notify ships them (events/notify/templates.yaml) — their fallback versions
# ("coupon-sms.email", "recommend-b.email") included, so a fallback to email is a real send, not a
# template_channel_mismatch.
RECEIPT_TEMPLATE: dict[str, Any] = {
    "template_id": "order-receipt",
    "channel": "email",
    "purpose": "transactional",
    "locales": {
        "zh-CN": {"subject": "订单已收到", "text": "感谢您的订单。"},
        "en": {"subject": "Thank you for your order", "text": "We have your order."},
    },
}
CLASSIC_TEMPLATES = ("coupon-sms", "coupon-sms.email", "winback-email", "recommend-b", "recommend-b.email")


def shipped_templates() -> list[dict[str, Any]]:
    import yaml

    shipped = yaml.safe_load((ROOT / "events" / "notify" / "templates.yaml").read_text(encoding="utf-8"))
    by_id = {t["template_id"]: t for t in shipped}
    missing = [t for t in CLASSIC_TEMPLATES if t not in by_id]
    if missing:
        raise SystemExit(f"events/notify/templates.yaml lacks the classic journeys' templates {missing}")
    return [RECEIPT_TEMPLATE, *(by_id[t] for t in CLASSIC_TEMPLATES)]


@dataclass
class Size:
    shoppers: int = 30
    probes: int = 20
    rate: float = 2.0  # webhooks per second offered (p99 < 5 s up to ~2/s on 2 shared cores: --sweep)
    batch_events: int = 100  # events sent through /v1/batch (the batch path)
    days: int = 16  # the clock is moved this far in 12-hour steps so every wait fires
    faults: bool = True
    seed: int = 14


SMOKE = Size(shoppers=4, probes=2, rate=20.0, batch_events=0, days=1)
QUICK = Size(shoppers=12, probes=8, rate=2.0, batch_events=50, days=8)


@dataclass
class RunResult:
    label: str
    size: Size
    sent: Counter[str] = field(default_factory=Counter)  # by answer class
    accepted: int = 0
    duration_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    probes_unsent: int = 0
    cost: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    memory_mb: dict[str, int] = field(default_factory=dict)  # per stage (the template's MemorySize)
    load_avg: list[float] = field(default_factory=list)  # the machine's 1-minute load at start and end
    cpu_s: float = 0.0  # this process's CPU seconds over the run (handlers, emulator, harness)


# -- runtime and setup ------------------------------------------------------------------------------------
def _runtime() -> Any:
    from benchmarks.meter import metered_runtime

    return metered_runtime()


def _cli(runtime: Any, *args: str) -> str:
    from huiliu_infra.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--api", runtime.api_url, "--key", runtime.tenant["admin_key"]])
    if code != 0:
        raise RuntimeError(f"huiliu {' '.join(args)} failed ({code}): {out.getvalue()[-500:]}")
    return out.getvalue()


def activate(runtime: Any) -> dict[str, Any]:
    """The shipped segments, the three classic journeys and the probe journey, as a merchant would
    apply them (the CLI against the admin API); what the journeys reference is seeded first."""
    from huiliu import aws
    from huiliu.settings import get_settings
    from huiliu.storage.dynamo import DynamoRepository
    from huiliu_infra.journeys_demo import seed_references

    seed_references("demo")
    tenants = DynamoRepository(get_settings().tenants_table)
    for template in shipped_templates():
        tenants.put(
            {
                "pk": "T#demo",
                "sk": f"TEMPLATE#{template['template_id']}",
                "template": {**template, "version": 1},
                "version": 1,
            }
        )
    # SES (moto) only sends from a verified identity; a real account verifies its domain once.
    ses = aws.client("sesv2", region_name=SES_REGION)
    with contextlib.suppress(Exception):
        ses.create_email_identity(EmailIdentity="noreply@example.com")
    segments = sorted(str(p) for p in (ROOT / "examples" / "segments").glob("*.yaml"))
    for path in segments:
        _cli(runtime, "segments", "apply", "-f", path)
    _cli(runtime, "journeys", "apply", "--examples")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "order-receipt.json"
        path.write_text(json.dumps(PROBE_JOURNEY))
        _cli(runtime, "journeys", "apply", str(path))
    runtime.drain(timeout=60)
    return {
        "segments": [Path(p).stem for p in segments],
        "journeys": ["signup-coupon", "winback", "cross-sell-b", PROBE_JOURNEY["id"]],
    }


# -- driving ----------------------------------------------------------------------------------------------
def drive(
    hooks: list[Webhook], rate: float, workers: int = 4
) -> tuple[list[tuple[Webhook, int, float]], float]:
    """Send every webhook at ``rate`` per second (a schedule of send times; up to ``workers`` in flight,
    as a shop's platform delivers concurrently). Returns (hook, status, time.time() of the answer)."""
    from huiliu_infra import sources

    answers: list[tuple[Webhook, int, float]] = []
    lock = threading.Lock()
    started = time.monotonic()

    def send(i: int, hook: Webhook) -> None:
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        status = 0
        for _attempt in range(3):  # a source retries a 5xx or a dropped connection
            try:
                status, _ = sources.send(hook.request)
            except OSError:
                status = 599
            if status < 500:
                break
        with lock:
            answers.append((hook, status, time.time()))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda pair: send(*pair), enumerate(hooks)))
    return answers, time.monotonic() - started


def drive_batch(runtime: Any, mix: Mix, events: int, retried: list[str] | None = None) -> list[Webhook]:
    """The batch path: known shoppers' events 50 to a ``/v1/batch`` request (a 5xx is retried; the
    answers retried are appended to ``retried``)."""
    import uuid

    from huiliu_infra import sources

    retried = [] if retried is None else retried
    out = []
    for start in range(0, events, 50):
        batch = []
        for k in range(start, min(events, start + 50)):
            person = mix._person(k % max(1, mix.shoppers))
            batch.append(
                {
                    "type": "track",
                    "userId": person["user"],
                    "event": "Product Viewed",
                    "messageId": uuid.uuid4().hex,
                    "properties": {"product_id": "SKU-A", "price": 59.0},
                }
            )
        request = sources.segment(runtime.tenant["connectors"]["segment"], "batch", {"batch": batch})
        status, body = 0, ""
        for _attempt in range(3):  # a sender retries a 5xx (the events' message ids make it safe)
            status, body = sources.send(request)
            if status < 500:
                break
            retried.append(body[:200])
        if status != 200:
            raise RuntimeError(f"batch: {status} {body[:200]}")
        out += [Webhook(request, "segment", ("segment", m["messageId"])) for m in batch]
    return out


# -- reading what happened (the harness's own unhooked reads) ---------------------------------------------
def _peek(runtime: Any, service: str, **kw: Any) -> Any:
    import boto3

    return boto3.session.Session().client(
        service, region_name=kw.pop("region", runtime.deployment.region), endpoint_url=runtime.endpoint, **kw
    )


def scan(runtime: Any, logical: str) -> list[dict[str, Any]]:
    from huiliu.storage.dynamo import deserialize

    ddb = _peek(runtime, "dynamodb")
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=runtime.deployment.tables[logical]):
        items += [deserialize(i) for i in page.get("Items", [])]
    return items


def provider_records(runtime: Any) -> list[dict[str, Any]]:
    """Every message the providers took: SES and SNS as the embedded moto recorded them, WeChat, Aliyun
    SMS and webhooks as notify's fake providers recorded them (``huiliu_infra.local.notify_sink``)."""
    if getattr(runtime, "notify_sink", None) is None:
        return []
    from huiliu_infra.local import notify_sink

    return notify_sink.sent(runtime)


def dead_letters(runtime: Any) -> list[dict[str, Any]]:
    sqs = _peek(runtime, "sqs")
    out = []
    for logical, queue in runtime.deployment.queues.items():
        if not logical.endswith("DLQ"):
            continue
        while True:
            got = sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                VisibilityTimeout=600,
            ).get("Messages", [])
            if not got:
                break
            for m in got:
                attrs = {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}
                out.append(
                    {
                        "queue": logical,
                        "body": m["Body"],
                        "reason": attrs.get("failure_reason"),
                        "attrs": attrs,
                    }
                )
    return out


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- one run ----------------------------------------------------------------------------------------------
def run_once(size: Size, *, faults: FaultRates | None, meter_cost: bool) -> RunResult:
    from huiliu_infra import cfn
    from huiliu_infra.local.provision import TEMPLATE

    from benchmarks.meter import Meter

    result = RunResult("faults" if faults else "clean", size)
    result.load_avg.append(os.getloadavg()[0])
    cpu = time.process_time()
    saved_env = dict(os.environ)  # a runtime names its endpoint in the environment: the next starts afresh
    mark = time.perf_counter()
    runtime = _runtime()
    result.phases["start"] = time.perf_counter() - mark
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # handlers print EMF metric lines
            meter = Meter(runtime, cfn.load_template(TEMPLATE)) if meter_cost else None
            if meter:
                result.memory_mb = {meter.stage_of[f]: mb for f, mb in meter.memory_mb.items()}
            injector = Faults(runtime, faults, seed=size.seed) if faults else None
            mark = time.perf_counter()
            result.checks["active"] = activate(runtime)
            result.phases["setup"] = time.perf_counter() - mark
            mix = Mix(
                runtime.tenant["connectors"], seed=size.seed, shoppers=size.shoppers, probes=size.probes
            )
            hooks = mix.webhooks()
            runtime.bus_events()  # the tap from here on
            if meter:
                meter.ledger.clear()
                meter.hook_clients()
            if injector:
                injector.hook_clients()
                injector.enabled = True
            # Poison with the load: each message takes maxReceiveCount failed receives (each a retry delay
            # and a batching window, ~10 s in all) to reach its DLQ, alongside the load and its drain.
            planted = injector.poison(["IdentityQueue", "SegmentsQueue", "JourneysQueue"]) if injector else {}
            with meter.measuring() if meter else contextlib.nullcontext():
                mark = time.perf_counter()
                answers, result.duration_s = drive(hooks, size.rate)
                runtime.drain(timeout=120)
                tap = runtime.bus_events(limit=100_000)
                before_clock_moves = list(tap)
                result.phases["load+drain"] = time.perf_counter() - mark
                mark = time.perf_counter()
                single = _ledger_copy(meter) if meter else None
                # the batch path, metered on its own
                if meter:
                    meter.ledger.clear()
                batch_retried: list[str] = []
                batch_hooks = (
                    drive_batch(runtime, mix, size.batch_events, batch_retried) if size.batch_events else []
                )
                result.checks["batch_5xx_retried"] = batch_retried
                runtime.drain(timeout=120)
                batch = _ledger_copy(meter) if meter else None
                result.phases["batch"] = time.perf_counter() - mark
                mark = time.perf_counter()
                if meter:
                    meter.ledger.clear()
                # time passes: waits fire (coupon after 3 d, cross-sell after 15 d), segments' sweeps run
                if injector:
                    injector.arm_providers(max(1, size.shoppers // 10))
                for _ in range(size.days * 2):
                    runtime.advance(timedelta(hours=12), step=timedelta(hours=12))
                    if injector:
                        injector.late_ticks()
                runtime.drain(timeout=120)
                later = _ledger_copy(meter) if meter else None
                result.phases["clock"] = time.perf_counter() - mark
            if injector:
                injector.enabled = False
            mark = time.perf_counter()
            runtime.drain(timeout=120)
            tap += runtime.bus_events(limit=100_000)
            answers += [(h, 200, 0.0) for h in batch_hooks]
            result.sent = Counter(_answer_class(s) for _, s, _ in answers)
            accepted = [(h, s, t) for h, s, t in answers if 200 <= s < 300]
            result.accepted = len(accepted)
            result.latencies, result.probes_unsent = latencies(runtime, accepted, before_clock_moves)
            result.checks.update(verify(runtime, accepted, tap, planted))
            if meter:
                single_events = sum(1 for h, s, _ in answers[: len(hooks)] if 200 <= s < 300)
                result.cost = {
                    "single": (single, single_events),
                    "batch": (batch, len(batch_hooks)),
                    "time": (later, single_events + len(batch_hooks)),
                }
            if injector:
                result.injected = dict(injector.injected.counts)
            result.checks["invocations"] = runtime.stats.summary()
            result.checks["hops"] = runtime.stats.hop_summary()
            result.phases["verify"] = time.perf_counter() - mark
    finally:
        mark = time.perf_counter()
        runtime.stop()
        result.phases["stop"] = time.perf_counter() - mark
        os.environ.clear()
        os.environ.update(saved_env)
        result.load_avg.append(os.getloadavg()[0])
        result.cpu_s = time.process_time() - cpu
    return result


def _answer_class(status: int) -> str:
    return "2xx" if 200 <= status < 300 else "4xx" if status < 500 else "5xx/dropped"


def _ledger_copy(meter: Any) -> Any:
    from benchmarks.meter import Ledger

    copy = Ledger()
    with meter.ledger.lock:
        copy.rows.update(meter.ledger.rows)
        copy.calls.update(meter.ledger.calls)
    return copy


def latencies(
    runtime: Any, accepted: list[tuple[Webhook, int, float]], tap: list[dict[str, Any]]
) -> tuple[list[float], int]:
    """Seconds from each probe's 200 to its receipt's ``notification.sent`` (same process clock; the
    probes run before the clock is moved)."""
    from huiliu import aws

    probes = {h.probe: t for h, _, t in accepted if h.probe and t}
    ddb = aws.client("dynamodb")
    table = runtime.deployment.tables["IdentityTable"]
    profile_of: dict[str, str] = {}
    for user in probes:
        item = ddb.get_item(
            TableName=table, Key={"pk": {"S": f"T#demo#ID#user_id#{user}"}, "sk": {"S": "CLAIM"}}
        ).get("Item")
        if item:
            profile_of[item["profile_id"]["S"]] = user
    sent_at: dict[str, float] = {}
    for event in tap:
        detail = event.get("detail") or {}
        if event.get("detail-type") != "notification.sent" or detail.get("journey_id") != PROBE_JOURNEY["id"]:
            continue
        user = profile_of.get(detail.get("profile_id", ""))
        if user:
            at = _parse_time(detail["occurred_at"]).timestamp()
            sent_at[user] = min(sent_at.get(user, at), at)
    out = sorted(sent_at[u] - probes[u] for u in probes if u in sent_at)
    return out, len(probes) - len(out)


def verify(
    runtime: Any,
    accepted: list[tuple[Webhook, int, float]],
    tap: list[dict[str, Any]],
    planted: dict[str, list[str]],
) -> dict[str, Any]:
    identity = scan(runtime, "IdentityTable")
    from huiliu.identity.repository import processed_keys  # timeline items and old markers

    processed = {f"T#{t}#MSG#{c}#{m}" for t, c, m in processed_keys(identity)}
    expected = {f"T#demo#MSG#{c}#{m}" for h, _, _ in accepted if h.expect for c, m in [h.expect]}
    lost = sorted(expected - processed)
    messages = [i for i in scan(runtime, "MessagesTable") if str(i.get("sk", "")).startswith("MSG#")]
    states = Counter(str(i.get("state")) for i in messages)
    reasons = Counter(
        f"{i.get('channel')}:{i.get('state')}:{i.get('reason')}" for i in messages if i.get("state") != "sent"
    )
    sent_events = [e["detail"] for e in tap if e.get("detail-type") == "notification.sent"]
    requested = [e["detail"] for e in tap if e.get("detail-type") == "notification.requested"]
    sent_keys = Counter(d.get("idempotency_key") for d in sent_events)
    requested_keys = Counter(d.get("idempotency_key") for d in requested)
    providers = Counter(str(r.get("channel")) for r in provider_records(runtime))
    sent_log = Counter(str(i.get("channel")) for i in messages if str(i.get("state")) == "sent")
    letters = dead_letters(runtime)
    planted_ids = {m for ids in planted.values() for m in ids}
    poisoned = [d for d in letters if any(p in d["body"] for p in planted_ids)]
    other = [d for d in letters if d not in poisoned]
    return {
        "accepted_expected": len(expected),
        "lost": len(lost),
        "lost_examples": lost[:5],
        "requested": len(requested),
        "requested_distinct_keys": len(requested_keys),
        "send_log": dict(states),
        "send_log_not_sent": dict(reasons),
        "sent_events": len(sent_events),
        "sent_distinct_keys": len(sent_keys),
        "duplicate_sent_events": sum(c - 1 for c in sent_keys.values() if c > 1),
        "provider_records": dict(providers),
        "send_log_sent_by_channel": dict(sent_log),
        # a provider that took more than the send log says was sent: a duplicate (or an unlogged send)
        "duplicate_provider_sends": sum(max(0, providers[c] - sent_log[c]) for c in providers),
        "unrecorded_sends": sum(max(0, sent_log[c] - providers[c]) for c in sent_log),
        "poison_planted": len(planted_ids),
        "poison_in_dlq": len({p for p in planted_ids for d in poisoned if p in d["body"]}),
        "poison_with_reason": len(
            {p for p in planted_ids for d in poisoned if p in d["body"] and d["reason"]}
        ),
        "other_dead_letters": len(other),
        "other_dead_letters_with_reason": sum(1 for d in other if d["reason"]),
        "dead_letter_reasons": Counter(
            (d["queue"], (d["reason"] or "(none)")[:70]) for d in letters
        ).most_common(8),
    }


# -- cost -------------------------------------------------------------------------------------------------
def cost_rows(result: RunResult) -> list[list[str]]:
    from benchmarks.meter import priced

    rows = []
    for path, (ledger, events) in result.cost.items():
        if ledger is None or not events:
            continue
        usd = priced(ledger)
        for (stage, service), value in sorted(usd.items(), key=lambda kv: (kv[0][0], -kv[1])):
            per_m = value / events * 1e6
            if per_m < 0.0005:
                continue
            calls = (
                sum(c for (s, svc, _op), c in ledger.calls.items() if s == stage and svc == service) / events
            )
            detail = ""
            if service == "lambda":
                invocations = ledger.rows.get((stage, "lambda", "lambda.request"), 0)
                gb_s = ledger.rows.get((stage, "lambda", "lambda.gb_second_arm"), 0)
                mb = result.memory_mb.get(stage, 512)
                if invocations:
                    detail = (
                        f"{invocations / events:.3f} invocations/event, "
                        f"{gb_s / invocations * 1024 / mb * 1000:.0f} ms billed/invocation"
                    )
            else:
                detail = ", ".join(
                    f"{op} {c / events:.2f}"
                    for (s, svc, op), c in sorted(ledger.calls.items())
                    if s == stage and svc == service
                )
            rows.append([path, stage, service, f"{per_m:.3f}", f"{calls:.2f}" if calls else "-", detail])
    return rows


def cost_summary(result: RunResult) -> list[list[str]]:
    from benchmarks.meter import priced

    by: dict[str, dict[str, float]] = {}
    for path, (ledger, events) in result.cost.items():
        if ledger is None or not events:
            continue
        stages: dict[str, float] = defaultdict(float)
        for (stage, _service), value in priced(ledger).items():
            stages[stage] += value / events * 1e6
        by[path] = stages
    order = [
        "ingest",
        "identity",
        "segments",
        "segment-sweep",
        "journeys",
        "journey-tick",
        "notify",
        "notify-tick",
        "feedback",
        "ops",
    ]
    stages = order + sorted({s for v in by.values() for s in v} - set(order))
    rows = []
    for stage in stages:
        if not any(by[p].get(stage) for p in by):
            continue
        rows.append([stage, *(f"{by[p].get(stage, 0):.3f}" for p in by)])
    time_share = sum(by.get("time", {}).values())
    rows.append(["TOTAL per path", *(f"{sum(by[p].values()):.3f}" for p in by)])
    rows.append(
        [
            "end to end (path + time)",
            *(f"{sum(by[p].values()) + time_share:.3f}" if p != "time" else "" for p in by),
        ]
    )
    return rows, list(by)


# -- reporting --------------------------------------------------------------------------------------------
def _grid(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


HOP_PARTS = ["queued", "window", "slot", "handler"]
# The latency probe's path, first; then the rest
PROBE_PATH = ["IdentityQueue", "JourneysQueue", "NotifyEmailQueue"]


def hop_rows(hops: dict[str, dict[str, Any]]) -> list[list[str]]:
    order = [q for q in PROBE_PATH if q in hops] + sorted(q for q in hops if q not in PROBE_PATH)
    return [
        [
            queue + (" *" if queue in PROBE_PATH else ""),
            str(hops[queue]["batches"]),
            str(hops[queue]["records"]),
            *(f"{hops[queue][p]['p50']:.2f}/{hops[queue][p]['p95']:.2f}" for p in HOP_PARTS),
        ]
        for queue in order
    ]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def machine() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def table(results: list[RunResult]) -> str:
    parts = [f"machine: {machine()}"]
    lat_rows = []
    for r in results:
        offered = sum(r.sent.values()) - r.size.batch_events
        parts.append(
            f"{r.label} run phases (s): "
            + ", ".join(f"{k} {v:.0f}" for k, v in r.phases.items())
            + (f"; load average {r.load_avg[0]:.1f} -> {r.load_avg[-1]:.1f}" if r.load_avg else "")
            + (f"; CPU {r.cpu_s:.0f} s" if r.cpu_s else "")
        )
        rate = offered / r.duration_s if r.duration_s else 0
        lat = r.latencies
        p99 = _pct(lat, 0.99)
        lat_rows.append(
            [
                r.label,
                f"{rate:.1f}/s",
                str(len(lat)),
                str(r.probes_unsent),
                f"{_pct(lat, 0.5):.2f}",
                f"{_pct(lat, 0.95):.2f}",
                f"{p99:.2f}",
                f"{max(lat) if lat else float('nan'):.2f}",
                f"< {LATENCY_TARGET_P99_S:.0f} s {'ok' if p99 < LATENCY_TARGET_P99_S else 'MISSED'}",
            ]
        )
    parts += [
        "\n== latency: webhook 200 -> notification.sent (no-wait journey, email), seconds ==",
        _grid(["run", "webhooks/s", "probes", "unsent", "p50", "p95", "p99", "max", "target p99"], lat_rows),
    ]
    for r in results:
        if r.checks.get("hops"):
            parts += [
                f"\n== where the time goes ({r.label} run): per hop, seconds p50/p95 — queued = in the queue "
                "before its poller took it, window = filling the batch (MaximumBatchingWindowInSeconds), "
                "slot = waiting for the one handler slot, handler = the handler (its AWS calls in the "
                "emulator included); * = the latency probe's path ==",
                _grid(["queue", "batches", "records", *HOP_PARTS], hop_rows(r.checks["hops"])),
            ]
    for r in results:
        if not r.cost:
            continue
        summary, paths = cost_summary(r)
        header = ["stage", *(f"{p} USD/M" for p in paths)]
        parts += [
            f"\n== cost ({r.label} run): USD per million events, webhook -> journey step -> message "
            "requested (and notify's send; SES's own price excluded) ==",
            "single = the webhook mix (one event per request), batch = /v1/batch of 50, time = the clock "
            "moved "
            f"{r.size.days} days (sweeps, ticks, waits firing), per event of the run",
            _grid(header, summary),
        ]
        end_to_end = float(summary[-1][1])
        parts.append(
            f"target <= ${COST_TARGET_USD_PER_M:.2f}/M end to end: "
            f"{'ok' if end_to_end <= COST_TARGET_USD_PER_M else 'MISSED'} (${end_to_end:.3f}/M)"
        )
        parts += [
            "\n-- per stage and service (USD per million events; AWS calls per event)",
            _grid(["path", "stage", "service", "usd/M", "calls/event", "per event"], cost_rows(r)),
        ]
    fault_rows = []
    for r in results:
        c = r.checks
        fault_rows.append(
            [
                r.label,
                str(r.accepted),
                str(c["lost"]),
                str(c["requested_distinct_keys"]),
                str(c["send_log"].get("sent", 0)),
                str(c["duplicate_sent_events"]),
                f"{sum(c['provider_records'].values())}/{sum(c['send_log_sent_by_channel'].values())}",
                str(c["duplicate_provider_sends"]),
                f"{c['poison_in_dlq']}/{c['poison_planted']} ({c['poison_with_reason']} with reason)",
                f"{c['other_dead_letters']} ({c['other_dead_letters_with_reason']} with reason)",
            ]
        )
    parts += [
        "\n== faults: nothing lost, nothing twice ==",
        _grid(
            [
                "run",
                "accepted",
                "lost",
                "msgs requested",
                "sent (log)",
                "dup sent events",
                "provider/log sent",
                "dup provider sends",
                "poison -> DLQ",
                "other DLQ",
            ],
            fault_rows,
        ),
    ]
    for r in results:
        if r.injected:
            parts.append(
                f"injected in the {r.label} run: "
                + ", ".join(f"{k} {v}" for k, v in sorted(r.injected.items()))
            )
        parts.append(
            f"{r.label}: answers {dict(r.sent)}; send log {r.checks['send_log']}; "
            f"not sent: {r.checks['send_log_not_sent']}"
        )
        if r.checks.get("batch_5xx_retried"):
            parts.append(f"  batch path 5xx retried by the sender: {r.checks['batch_5xx_retried']}")
        if r.checks["lost_examples"]:
            parts.append(f"  lost e.g. {r.checks['lost_examples']}")
        if r.checks["dead_letter_reasons"]:
            parts.append(
                "  dead letters: "
                + "; ".join(f"{q}: {why} x{n}" for (q, why), n in r.checks["dead_letter_reasons"])
            )
    return "\n".join(parts)


def run(quick: bool = False, size: Size | None = None) -> list[RunResult]:
    size = size or (QUICK if quick else Size())
    results = [run_once(size, faults=None, meter_cost=True)]
    if size.faults:
        results.append(run_once(size, faults=FaultRates(), meter_cost=False))
    return results


def sweep(size: Size, rates: list[float]) -> list[RunResult]:
    """Latency against the offered rate: the clean webhook load alone at each rate (no cost meter, batch
    path or clock moves), a fresh runtime each — where the one-process runtime stops keeping up."""
    out = []
    for rate in rates:
        alone = Size(**{**size.__dict__, "rate": rate, "batch_events": 0, "days": 0, "faults": False})
        result = run_once(alone, faults=None, meter_cost=False)
        result.label = f"clean @{rate:g}/s"
        out.append(result)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--shoppers", type=int)
    parser.add_argument("--probes", type=int)
    parser.add_argument("--rate", type=float, help="webhooks per second offered")
    parser.add_argument("--batch-events", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument(
        "--sweep", help="comma-separated offered rates (webhooks/s): latency per rate, clean load only"
    )
    args = parser.parse_args(argv)
    size = QUICK if args.quick else Size()
    overrides = {
        k: v
        for k, v in {
            "shoppers": args.shoppers,
            "probes": args.probes,
            "rate": args.rate,
            "batch_events": args.batch_events,
            "days": args.days,
        }.items()
        if v is not None
    }
    size = Size(**{**size.__dict__, **overrides, "faults": not args.no_faults})
    started = time.perf_counter()
    results = sweep(size, [float(r) for r in args.sweep.split(",")]) if args.sweep else run(size=size)
    print(table(results))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
