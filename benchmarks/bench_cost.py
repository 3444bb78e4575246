"""Cost per event: every AWS request of a local-runtime run, priced per stage and service (USD per
million events), for the single-webhook path and the batch path.

    .venv/bin/python -m benchmarks --only cost [--quick]

How requests are counted and priced: ``benchmarks/meter.py``; prices: ``benchmarks/pricing.py``;
what the rows mean and how a stage adds its own: docs/cost.md.

Each workload runs against a warm runtime (one warm-up round first, unmetered: module imports,
tenant settings and secrets caches are a cold start's cost, amortised to ~0 per event at volume),
sends all its requests, then waits for every queue to drain, so SQS consumers see real batches.
"""

from __future__ import annotations

import copy
import json
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "shared", ROOT / "infra", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from benchmarks import bench_segments, pricing  # noqa: E402
from benchmarks.meter import Meter, priced  # noqa: E402

# The ingest half: what it costs to turn a webhook into profile.changed on the bus.
INGEST_HALF = ("ingest", "identity")


@dataclass
class Ctx:
    runtime: Any
    connectors: dict[str, Any]
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def send(self, request: Any) -> None:
        from huiliu_infra import sources

        status, body = sources.send(request)
        if status != 200:
            raise RuntimeError(f"{request.label}: {status} {body[:200]}")


@dataclass
class Workload:
    """A metered path. ``setup`` runs unmetered; ``drive`` sends the metered traffic and returns the
    number of events it represents (the denominator of every per-event figure)."""

    name: str
    path: str  # "single" (one event per HTTP request) or "batch"
    drive: Callable[[Ctx, int], int]
    setup: Callable[[Ctx, int], None] | None = None
    requests: int = 40  # full run; --quick uses a quarter


@dataclass
class Target:
    workload: str
    stages: tuple[str, ...]
    usd_per_million: float


# -- workloads -----------------------------------------------------------------------------------------------
def _segment(ctx: Ctx, call: str, payload: dict[str, Any]) -> Any:
    from huiliu_infra import sources

    return sources.segment(ctx.connectors["segment"], call, payload, label=f"segment {call}")


def _user(ctx: Ctx, i: int) -> str:
    return f"cost-{ctx.run}-{i}"


def _identify(ctx: Ctx, i: int, tag: str = "") -> dict[str, Any]:
    return {
        "userId": _user(ctx, i) + tag,
        "messageId": uuid.uuid4().hex,
        "traits": {
            "email": f"{_user(ctx, i)}{tag}@example.com",
            "name": f"Customer {i}",
            "city": "Hangzhou",
            "plan": "gold",
        },
    }


def _track(ctx: Ctx, i: int) -> dict[str, Any]:
    return {
        "userId": _user(ctx, i),
        "event": "Product Viewed",
        "messageId": uuid.uuid4().hex,
        "properties": {"product_id": f"p-{i % 7}", "price": 19.9, "category": "tea"},
        "context": {"library": {"name": "analytics.js", "version": "4.1.0"}, "ip": "203.0.113.9"},
    }


def setup_known_users(ctx: Ctx, n: int) -> None:
    for i in range(n):
        ctx.send(_segment(ctx, "identify", _identify(ctx, i)))


def drive_track_known(ctx: Ctx, n: int) -> int:
    for i in range(n):
        ctx.send(_segment(ctx, "track", _track(ctx, i)))
    return n


def drive_identify_new(ctx: Ctx, n: int) -> int:
    for i in range(n):
        ctx.send(_segment(ctx, "identify", _identify(ctx, i, tag="-new")))
    return n


def _order(ctx: Ctx, i: int, k: int) -> dict[str, Any]:
    order = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    order = copy.deepcopy(order)
    order["id"] = int(time.time() * 1000) * 100 + k * 10 + i % 10 + i * 1000
    order["name"] = f"#{ctx.run}-{i}-{k}"
    email = f"shop-{ctx.run}-{i}@example.com"
    order["email"] = email
    order.pop("phone", None)
    order["customer"] = {"id": 7_000_000 + i, "email": email}
    return order


def setup_shop_customers(ctx: Ctx, n: int) -> None:
    from huiliu_infra import sources

    for i in range(n):
        ctx.send(sources.shopify(ctx.connectors["shopify"], "orders/create", _order(ctx, i, 0)))


def drive_shop_orders(ctx: Ctx, n: int) -> int:
    from huiliu_infra import sources

    for i in range(n):
        ctx.send(sources.shopify(ctx.connectors["shopify"], "orders/create", _order(ctx, i, 1)))
    return n


def setup_signup_journey(ctx: Ctx, n: int) -> None:
    """The signup-coupon example journey, applied through the admin API (a no-op once applied)."""
    from huiliu.journeys.examples import example_documents
    from huiliu_infra.cli_profiles import call
    from huiliu_infra.journeys_demo import seed_references

    seed_references("demo")
    doc = next(d for d in example_documents() if d["id"] == "signup-coupon")
    call(ctx.runtime.api_url, ctx.runtime.tenant["admin_key"], "POST", "/journeys", body=doc)


def drive_signup_journey(ctx: Ctx, n: int) -> int:
    """Signed Up -> enrolled -> 3 days (ticks) -> no order -> coupon SMS requested + tag back in."""
    from datetime import timedelta

    for i in range(n):
        payload = {"userId": _user(ctx, i) + "-journey", "event": "Signed Up", "messageId": uuid.uuid4().hex}
        ctx.send(_segment(ctx, "track", payload))
    ctx.runtime.drain(timeout=120)
    ctx.runtime.advance(timedelta(days=3, hours=1), step=timedelta(days=1))
    return n


BATCH = 50


def drive_batch(ctx: Ctx, n: int) -> int:
    batches = max(1, n // 10)
    for b in range(batches):
        batch = [dict(_track(ctx, (b * BATCH + j) % n), type="track") for j in range(BATCH)]
        ctx.send(_segment(ctx, "batch", {"batch": batch}))
    return batches * BATCH


def _admin(ctx: Ctx, method: str, path: str, body: Any = None) -> Any:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the local runtime
        ctx.runtime.api_url + "/admin" + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": f"Bearer {ctx.runtime.tenant['admin_key']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read())


def setup_receipts(ctx: Ctx, n: int) -> None:
    """Known people with an email (notify's contact projection hears them) and a receipt template."""
    _admin(
        ctx,
        "POST",
        "/templates",
        {
            "template_id": "cost-receipt",
            "channel": "email",
            "purpose": "transactional",
            "locales": {"zh-CN": {"subject": "订单 {{ vars.order_id }}", "text": "谢谢 {{ traits.name }}"}},
            "sample": {"traits": {"name": "Li"}, "vars": {"order_id": "1"}},
        },
    )
    setup_known_users(ctx, n)
    ctx.runtime.drain(timeout=60)
    ctx.profiles = [  # type: ignore[attr-defined]
        _admin(ctx, "GET", f"/profiles/lookup?email={_user(ctx, i)}@example.com")["profile_id"]
        for i in range(n)
    ]


def drive_receipts(ctx: Ctx, n: int) -> int:
    """Transactional email through the admin API: notification.requested → notify → SES → sent."""
    for i in range(n):
        _admin(
            ctx,
            "POST",
            "/notifications",
            {
                "idempotency_key": f"cost-{ctx.run}-{i}",
                "profile_id": ctx.profiles[i],  # type: ignore[attr-defined]
                "channel": "email",
                "template_id": "cost-receipt",
                "variables": {"order_id": str(i)},
            },
        )
    return n


CSV_ROWS_PER_REQUEST = 25  # one file of 25 x n rows (200 in a full run): the importer's chunks fill


def drive_csv_import(ctx: Ctx, n: int) -> int:
    """One customer file uploaded under imports/{tenant}/: the importer streams it to identity and
    sends its ingestion counts (csv-import) to the reports stage, one message per 100-row chunk."""
    from huiliu import aws

    rows = n * CSV_ROWS_PER_REQUEST
    lines = ["email,name,city"]
    lines += [f"csv-{ctx.run}-{i}@example.com,Customer {i},Hangzhou" for i in range(rows)]
    aws.client("s3").put_object(
        Bucket=ctx.runtime.deployment.buckets["RawBucket"],
        Key=f"imports/demo/cost-{ctx.run}-{uuid.uuid4().hex[:6]}.csv",
        Body=("\n".join(lines) + "\n").encode(),
    )
    return rows


WORKLOADS: list[Workload] = [
    Workload("segment track, known user", "single", drive_track_known, setup_known_users),
    Workload("segment identify, new user", "single", drive_identify_new),
    Workload("shopify orders/create, returning customer", "single", drive_shop_orders, setup_shop_customers),
    Workload(f"segment /v1/batch of {BATCH}, known users", "batch", drive_batch, setup_known_users),
    Workload(
        "signup -> journey step (wait 3d, coupon SMS, tag)",
        "single",
        drive_signup_journey,
        setup_signup_journey,
    ),
    Workload("transactional email (admin API -> notify -> SES)", "single", drive_receipts, setup_receipts),
    Workload(
        f"CSV import, {CSV_ROWS_PER_REQUEST} x n rows in one file", "batch", drive_csv_import, requests=8
    ),
    # last: its setup saves the example segments, which every later workload would then see
    Workload(
        "segment track order, 14 example segments",
        "single",
        bench_segments.drive_orders_with_segments,
        bench_segments.setup_with_example_segments,
    ),
]

TARGETS: list[Target] = [
    Target("segment track, known user", INGEST_HALF, 2.50),
    Target("segment identify, new user", INGEST_HALF, 2.50),
    Target("shopify orders/create, returning customer", INGEST_HALF, 2.50),
    Target(f"segment /v1/batch of {BATCH}, known users", INGEST_HALF, 1.00),
]
# Identity capacity per known-person event (read units, write units).
IDENTITY_UNITS_TARGET = (1.0, 3.0)


# -- running -------------------------------------------------------------------------------------------------
def _runtime() -> Any:
    from benchmarks.meter import metered_runtime

    return metered_runtime()


def measure(workload: Workload, ctx: Ctx, meter: Meter, n: int) -> dict[str, Any]:
    if workload.setup:
        workload.setup(ctx, n)
    ctx.runtime.drain(timeout=60)
    before = meter.storage_bytes()
    meter.ledger.clear()
    with meter.measuring():
        events = workload.drive(ctx, n)
        if not ctx.runtime.drain(timeout=120):
            raise RuntimeError(f"{workload.name}: queues did not drain")
    after = meter.storage_bytes()
    usd = priced(meter.ledger)
    per_million = {key: value / events * 1e6 for key, value in usd.items()}
    stored = {k: (after[k] - before.get(k, 0)) / events * 1e6 / pricing.GB for k in after}
    units: dict[str, float] = defaultdict(float)
    for (stage, _service, item), qty in meter.ledger.rows.items():
        if item.startswith("dynamodb.") and item.endswith("_unit"):
            units[f"{stage}.{'rru' if 'read' in item else 'wru'}"] += qty / events
    calls = {f"{s}.{svc}.{op}": c / events for (s, svc, op), c in meter.ledger.calls.items()}
    return {
        "workload": workload.name,
        "path": workload.path,
        "events": events,
        "usd_per_million": per_million,
        "storage_gb_per_million": stored,
        "units_per_event": dict(units),
        "calls_per_event": calls,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    import contextlib
    import io

    runtime = _runtime()
    # Handlers print their EMF metric lines to stdout (as in Lambda): keep them out of the tables.
    with contextlib.redirect_stdout(io.StringIO()):
        return _run(runtime, quick)


def _run(runtime: Any, quick: bool) -> list[dict[str, Any]]:
    from huiliu_infra import cfn
    from huiliu_infra.local.provision import TEMPLATE

    try:
        meter = Meter(runtime, cfn.load_template(TEMPLATE))
        connectors = runtime.tenant["connectors"]
        # Warm-up round (unmetered): every function and cache a workload touches.
        warm = Ctx(runtime, connectors)
        for workload in WORKLOADS:
            if workload.setup:
                workload.setup(warm, 2)
            workload.drive(warm, 10 if workload.path == "batch" else 2)
        runtime.drain(timeout=60)
        results = []
        for workload in WORKLOADS:
            n = max(4, workload.requests // 4) if quick else workload.requests
            results.append(measure(workload, Ctx(runtime, connectors), meter, n))
        return results
    finally:
        runtime.stop()


# -- reporting -----------------------------------------------------------------------------------------------
def _money(value: float) -> str:
    return f"{value:.3f}"


def _grid(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def summary_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for res in results:
        usd = res["usd_per_million"]
        by_stage: dict[str, float] = defaultdict(float)
        for (stage, _svc), value in usd.items():
            by_stage[stage] += value
        half = sum(by_stage[s] for s in INGEST_HALF)
        target = next((t for t in TARGETS if t.workload == res["workload"]), None)
        rest = sum(v for s, v in by_stage.items() if s not in INGEST_HALF)
        units = res["units_per_event"]
        storage = res["storage_gb_per_million"]
        ddb_gb = sum(v for k, v in storage.items() if k.startswith("dynamodb"))
        s3_gb = sum(v for k, v in storage.items() if k.startswith("s3"))
        rows.append(
            [
                res["workload"],
                res["path"],
                _money(by_stage.get("ingest", 0)),
                _money(by_stage.get("identity", 0)),
                _money(half),
                f"<= {target.usd_per_million:.2f} {'ok' if half <= target.usd_per_million else 'OVER'}"
                if target
                else "",
                _money(rest),
                f"{units.get('identity.rru', 0):.2f} / {units.get('identity.wru', 0):.2f}",
                f"{units.get('ingest.wru', 0):.2f}",
                f"{ddb_gb:.2f} / {s3_gb:.2f}",
            ]
        )
    return rows


def service_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for (stage, service), value in sorted(res["usd_per_million"].items(), key=lambda kv: (kv[0][0], -kv[1])):
        if value < 0.0005:
            continue
        calls = sum(c for k, c in res["calls_per_event"].items() if k.startswith(f"{stage}.{service}."))
        ops = ", ".join(
            f"{k.split('.', 2)[2]} {c:.2f}"
            for k, c in sorted(res["calls_per_event"].items())
            if k.startswith(f"{stage}.{service}.")
        )
        rows.append([stage, service, _money(value), f"{calls:.2f}" if calls else "-", ops])
    return rows


def table(results: list[dict[str, Any]]) -> str:
    parts = [
        "USD per million events (us-east-1 list prices of "
        f"{pricing.PRICES_AS_OF}, benchmarks/pricing.py); ingest half = "
        + " + ".join(INGEST_HALF)
        + " (webhook -> profile.changed on the bus); rest = other stages and ops (fan-out, bus log)",
        _grid(
            [
                "workload",
                "path",
                "ingest",
                "identity",
                "ingest half",
                "target",
                "rest",
                "identity RRU/WRU per event",
                "ingest WRU",
                "GB/M events: ddb / s3",
            ],
            summary_rows(results),
        ),
    ]
    for res in results:
        parts.append(
            f"\n-- {res['workload']} ({res['events']} events): per stage and service, USD per million"
        )
        parts.append(
            _grid(["stage", "service", "usd/M", "calls/event", "operations per event"], service_rows(res))
        )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    print(table(results))
    if args.json:
        flat = [
            dict(r, usd_per_million={"/".join(k): v for k, v in r["usd_per_million"].items()})
            for r in results
        ]
        Path(args.json).write_text(json.dumps(flat, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
