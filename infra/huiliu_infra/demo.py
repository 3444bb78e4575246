"""``huiliu demo`` / ``make demo``: the local runtime with the sample webhooks from ``events/``
flowing through it, and a report of what each stage did."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from huiliu_infra import journeys_demo, sources
from huiliu_infra.local.provision import ROOT

EVENTS = ROOT / "events"
_out: Any = None


def say(*parts: Any) -> None:
    """The demo's report goes to the terminal even while handler output goes to the log file."""
    print(*parts, file=_out, flush=True)


def _load(path: str) -> Any:
    file = EVENTS / path
    return (
        file.read_text(encoding="utf-8")
        if file.suffix == ".xml"
        else json.loads(file.read_text(encoding="utf-8"))
    )


def sample_requests(connectors: dict[str, Any]) -> list[sources.SignedRequest]:
    """One shopper's story across every connector, from the sample payloads."""
    seg, yz, wx, shop, sj = (
        connectors["segment"],
        connectors["youzan"],
        connectors["wechat"],
        connectors["shopify"],
        connectors["signed-json"],
    )
    return [
        sources.wechat(
            wx, _load("wechat/subscribe.xml"), safe_mode=True, label="WeChat subscribe (AES safe mode)"
        ),
        sources.youzan(yz, _load("youzan/SCRM_CUSTOMER_CARD.json"), label="Youzan member card given"),
        sources.youzan(yz, _load("youzan/trade_TradePaid.json"), label="Youzan trade paid"),
        sources.segment(seg, "identify", _load("segment/identify.json"), label="Segment identify"),
        sources.segment(seg, "track", _load("segment/track.json"), label="Segment track"),
        sources.segment(seg, "batch", _load("segment/batch.json"), label="Segment batch"),
        sources.shopify(
            shop, "customers/create", _load("shopify/customers_create.json"), label="Shopify customers/create"
        ),
        sources.shopify(
            shop, "orders/create", _load("shopify/orders_create.json"), label="Shopify orders/create"
        ),
        sources.signed_json(sj, _load("signed-json/order.json"), label="POS order (Standard Webhooks)"),
        sources.wechat(
            wx, _load("wechat/click.xml"), safe_mode=True, label="WeChat menu click (AES safe mode)"
        ),
    ]


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def _profiles(runtime: Any) -> list[dict[str, Any]]:
    from huiliu import aws
    from huiliu.storage.dynamo import deserialize

    table = runtime.deployment.tables["IdentityTable"]
    paginator = aws.client("dynamodb").get_paginator("scan")
    items = []
    for page in paginator.paginate(TableName=table):
        for raw in page.get("Items", []):
            item = deserialize(raw)
            if item.get("sk") == "PROFILE" and not item.get("merged_into"):
                items.append(item)
    return items


def run_command(argv: list[str]) -> int:
    """Run one `huiliu` command module's subcommand in process (the demo shows what the CLI prints),
    without importing the CLI entry point (which imports this module)."""
    import argparse

    from huiliu_infra import cli_profiles

    parser = argparse.ArgumentParser(prog="huiliu")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (cli_profiles,):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _profile_view(runtime: Any, phone: str) -> str:
    """What the CLI prints for one person (run in process, its output captured)."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run_command(
            [
                "profiles",
                "get",
                "--phone",
                phone,
                "--api",
                runtime.api_url,
                "--key",
                runtime.tenant["admin_key"],
            ]
        )
    lines = [line for line in buffer.getvalue().splitlines() if not line.startswith("{")]
    return "\n".join("  " + line for line in lines[:30])


def run_demo(*, http_port: int = 3000, aws_port: int = 4566, keep_running: bool = False) -> int:
    """Run the demo; the handlers' JSON logs (and metrics) go to .huiliu/demo.log, the report to stdout."""
    import sys

    from huiliu_infra.local.runtime import STATE_DIR

    STATE_DIR.mkdir(exist_ok=True)
    log_path = STATE_DIR / "demo.log"
    global _out
    _out = sys.stdout
    with log_path.open("w", encoding="utf-8") as log_file:
        sys.stdout = log_file  # Powertools Logger/Metrics write to stdout, as in Lambda
        try:
            code = _run(http_port=http_port, aws_port=aws_port, keep_running=keep_running)
        finally:
            sys.stdout = _out
    print(f"\nHandler logs (JSON, one line per log, with correlation ids): {log_path.relative_to(ROOT)}")
    return code


def _run(*, http_port: int, aws_port: int, keep_running: bool) -> int:
    from huiliu_infra.local.banner import print_banner
    from huiliu_infra.local.runtime import LocalRuntime
    from huiliu_infra.local.support import UnsupportedTemplateFeature

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("huiliu.local").setLevel(logging.ERROR)
    started = time.perf_counter()
    runtime = LocalRuntime(http_port=http_port, aws_port=aws_port, quiet=True)
    try:
        runtime.start()
    except (OSError, UnsupportedTemplateFeature) as exc:
        say(
            f"cannot start the local runtime: {exc}. Is `make local` already running? "
            "Stop it or set HUILIU_HTTP_PORT / HUILIU_AWS_PORT."
        )
        return 1
    try:
        print_banner(runtime, say)
        say(f"\n(started in {time.perf_counter() - started:.1f}s)\n")
        from huiliu_infra import demo_notify, demo_segments

        say("== 0. Segments from examples/segments/: huiliu segments apply -f examples/segments ==")
        say(demo_segments.indent(demo_segments.apply_examples(runtime)))
        say("\n== 0a. Message templates: huiliu templates apply -f events/notify/templates.yaml ==")
        say(demo_notify.apply_templates(runtime))
        say("\n== 0b. The three classic journeys: huiliu journeys apply --examples ==")
        journeys_demo.apply_examples(runtime, say)
        say("\n== 1. Sample webhooks from events/, signed as each source signs them ==")
        rows = []
        for request in sample_requests(runtime.tenant["connectors"]):
            status, reply = sources.send(request)
            rows.append([request.label, status, reply[:60].replace("\n", " ")])
        say(_table(["request", "HTTP", "reply"], rows))

        runtime.drain(timeout=60)
        say("\n== 2. Through the pipeline: ingest → bus → identity → segments/journeys ==")
        stats = runtime.stats.summary()
        say(
            _table(
                ["function", "invocations", "errors", "record failures"],
                [
                    [fn, s["invocations"], s["errors"], s["record_failures"]]
                    for fn, s in sorted(stats.items())
                ],
            )
        )
        events = runtime.bus_events()
        counts: dict[str, int] = {}
        for event in events:
            counts[event.get("detail-type", "?")] = counts.get(event.get("detail-type", "?"), 0) + 1
        say(
            "\nOn the bus (EventBridge and the bus topic): "
            + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items()))
        )
        if events:
            first = next((e for e in events if e.get("source") == "huiliu.ingest"), events[0])
            cid = first.get("detail", {}).get("correlation_id")
            trail = [e.get("detail-type") for e in events if e.get("detail", {}).get("correlation_id") == cid]
            say(f"One event followed by its correlation id {cid}: {' → '.join(trail)}")

        say("\n== 3. Profiles (one per person) ==")
        profiles = _profiles(runtime)
        rows = []
        for p in profiles:
            idents = ", ".join(f"{i['type']}={i['value']}" for i in p.get("identifiers", []))
            traits = p.get("traits", {})
            name = traits.get("name") or traits.get("first_name") or ""
            computed = p.get("computed", {})
            orders = computed.get("order_count", "")
            revenue = computed.get("revenue_total", "")
            rows.append([p["profile_id"][:12], name, orders, revenue, idents[:110]])
        say(_table(["profile", "name", "orders", "revenue", "identifiers"], rows))

        say("\n== 3b. One person's 360 view: huiliu profiles get --phone 13800138000 ==")
        say(_profile_view(runtime, "13800138000"))

        say("\n== 3c. Segments: a new order now, then the audiences (huiliu segments list) ==")
        say("  Segment transitions so far (real time and the backfill of the examples):")
        say(demo_segments.indent("\n".join(demo_segments.transitions(events))))
        demo_segments.order_now(runtime)
        runtime.drain(timeout=60)
        say("  After a new order (Segment track, Order Completed, now):")
        say(demo_segments.indent("\n".join(demo_segments.transitions(runtime.bus_events()))))
        say("")
        say(demo_segments.indent(demo_segments.audiences(runtime)))
        say("\n  huiliu segments why vip --phone 13800138000")
        say(demo_segments.indent(demo_segments.why(runtime, "vip", "13800138000")))

        say("\n== 4. Time moves: three days in one-hour steps (journey tick, segment sweep) ==")
        before = runtime.stats.summary()
        runtime.advance(timedelta(days=3), step=timedelta(hours=1))
        after = runtime.stats.summary()
        for fn in ("JourneyTickFunction", "SegmentSweepFunction"):
            ran = after.get(fn, {}).get("invocations", 0) - before.get(fn, {}).get("invocations", 0)
            say(f"  {fn}: {ran} ticks, clock now {runtime.clock.now():%Y-%m-%d %H:%M} UTC")

        say("\n== 4b. 28 more days in one-day steps: 'ordered in the last 30 days' ends by time alone ==")
        demo_segments.leave_by_time(runtime, say)

        say("\n== 4c. Journeys: enrollments and the messages they requested ==")
        journeys_demo.story(runtime, say)

        say("\n== 5. Dead-letter queues ==")
        depths = runtime.queue_depths()
        say("  " + ", ".join(f"{k}={v}" for k, v in depths.items() if k.endswith("DLQ")))

        say("\n== 5a. Mail feedback: SES events (emulated locally) -> feedback -> notification.* ==")
        from huiliu_infra.demo_feedback import readers

        say(readers(runtime))

        say("\n== 5a2. A CSV import with a bad row: aws s3 cp x.csv s3://<raw bucket>/imports/demo/ ==")
        from huiliu_infra.demo_import import import_customers

        say(import_customers(runtime))

        say("\n== 5b. Reports from counters kept as events flow: huiliu report --html .huiliu/report.html ==")
        from huiliu_infra.cli_report import demo_report
        from huiliu_infra.local.runtime import STATE_DIR

        report_path = STATE_DIR / "report.html"
        say(
            "\n".join(
                "  " + line
                for line in demo_report(
                    runtime.api_url, runtime.tenant["admin_key"], report_path
                ).splitlines()
            )
        )
        say(f"\n  Report page (one self-contained HTML file, opens offline): {report_path}")

        say("\n== 6. Messages sent (SES/SNS as moto records them; WeChat, Aliyun, webhooks in the sink) ==")
        say(demo_notify.send_samples(runtime))
        say(demo_notify.report(runtime))
        say(
            "\nLook further:\n"
            "  make local                               keep the runtime up for your own clients\n"
            "  .venv/bin/huiliu local tenant --json     connector secrets and URLs of the demo tenant\n"
            "  .venv/bin/huiliu profiles get --phone 13800138000     a profile's 360 view (runtime up)\n"
            "  .venv/bin/huiliu local advance 3d        move time forward from outside\n"
            f"  AWS_ENDPOINT_URL={runtime.endpoint} aws dynamodb scan "
            f"--table-name {runtime.deployment.tables['IdentityTable']}"
        )
        if keep_running:
            say("\nRuntime stays up (Ctrl-C stops).")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        runtime.stop()
