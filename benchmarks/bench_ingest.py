"""Ingest benchmark: handler CPU per single-event webhook, Segment batch throughput, PutEvents/event.

PutEvents per event (≤ 0.1) is measured on the batch path; a single-event webhook costs one
PutEvents call per request by nature.

Runs the real Lambda handler in process; the AWS clients behind the pipeline (DynamoDB, S3,
EventBridge) are in-memory fakes, so the numbers are Huiliu's own CPU cost, not network time.

    .venv/bin/python benchmarks/bench_ingest.py
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import io
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 1.0
TARGET_EVENTS_PER_S = 5000
TARGET_CALLS_PER_EVENT = 0.1


class FakeAws:
    """Just enough of the DynamoDB, S3 and EventBridge client APIs, counting calls."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.events = 0

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def put_item(self, **_: Any) -> dict[str, Any]:
        self._count("put_item")
        return {}

    def batch_write_item(self, **_: Any) -> dict[str, Any]:
        self._count("batch_write_item")
        return {}

    def put_record_batch(self, **_: Any) -> dict[str, Any]:
        self._count("put_record_batch")
        return {"FailedPutCount": 0}

    def put_events(self, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        self._count("put_events")
        self.events += len(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


class Context:
    function_name = "ingest"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:ap-east-1:123456789012:function:ingest"
    aws_request_id = "bench"


def load_app() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_ingest_app", ROOT / "functions" / "ingest" / "app.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def api_event(
    path: str, body: bytes, headers: dict[str, str], query: dict[str, str] | None = None, method: str = "POST"
) -> dict[str, Any]:
    return {
        "rawPath": path,
        "headers": {"content-type": "application/json", **headers},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": method, "sourceIp": "203.0.113.1"}, "requestId": "bench-req"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def webhook_events(secrets: Any, now: datetime) -> dict[str, dict[str, Any]]:
    events_dir = ROOT / "events"
    yz = json.loads((events_dir / "youzan" / "trade_TradePaid.json").read_text())
    yz["client_id"] = secrets.youzan.client_id
    yz_raw = json.dumps(yz).encode()
    yz_sign = hashlib.md5(
        secrets.youzan.client_id.encode() + yz_raw + secrets.youzan.client_secret.encode(),
        usedforsecurity=False,
    ).hexdigest()
    ts = str(int(now.timestamp()))
    wx_sig = hashlib.sha1(
        "".join(sorted([secrets.wechat.token, ts, "n"])).encode(), usedforsecurity=False
    ).hexdigest()
    wx_body = (events_dir / "wechat" / "subscribe.xml").read_bytes()
    shop_body = (events_dir / "shopify" / "orders_create.json").read_bytes()
    shop_mac = base64.b64encode(
        hmac.new(secrets.shopify.secret.encode(), shop_body, hashlib.sha256).digest()
    ).decode()
    from huiliu.connectors.signed_json import sign

    sj_body = (events_dir / "signed-json" / "order.json").read_bytes()
    sj_sig = "v1," + sign(secrets.signed_json.secret, "msg_b", ts, sj_body)
    from wechatpy.crypto import WeChatCrypto

    envelope = WeChatCrypto(
        secrets.wechat.token, secrets.wechat.encoding_aes_key, secrets.wechat.app_id
    ).encrypt_message(wx_body.decode(), "n2", ts)
    msg_signature = envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
    seg_body = (events_dir / "segment" / "track.json").read_bytes()
    basic = "Basic " + base64.b64encode(f"{secrets.segment.write_key}:".encode()).decode()
    return {
        "youzan": api_event("/v1/hooks/youzan/bench", yz_raw, {"event-sign": yz_sign}),
        "wechat (plain, compatible mode)": api_event(
            "/v1/hooks/wechat/bench",
            wx_body,
            {"content-type": "text/xml"},
            {"signature": wx_sig, "timestamp": ts, "nonce": "n"},
        ),
        "wechat (safe mode, AES)": api_event(
            "/v1/hooks/wechat/bench",
            envelope.encode(),
            {"content-type": "text/xml"},
            {"timestamp": ts, "nonce": "n2", "encrypt_type": "aes", "msg_signature": msg_signature},
        ),
        "shopify": api_event(
            "/v1/hooks/shopify/bench",
            shop_body,
            {
                "x-shopify-hmac-sha256": shop_mac,
                "x-shopify-topic": "orders/create",
                "x-shopify-webhook-id": "w1",
            },
        ),
        "signed-json": api_event(
            "/v1/hooks/signed-json/bench",
            sj_body,
            {"webhook-id": "msg_b", "webhook-timestamp": ts, "webhook-signature": sj_sig},
        ),
        "segment": api_event("/v1/track", seg_body, {"authorization": basic}),
    }


def segment_batch(secrets: Any, size: int) -> dict[str, Any]:
    batch = [
        {
            "type": "track",
            "userId": f"user-{i}",
            "event": "Product Viewed",
            "messageId": f"bench-{i}",
            "properties": {"product_id": f"p-{i % 50}", "price": 19.9, "category": "tea"},
            "context": {"library": {"name": "analytics-python", "version": "2.3.4"}, "ip": "203.0.113.1"},
            "timestamp": "2026-01-02T03:04:05.000Z",
        }
        for i in range(size)
    ]
    body = gzip.compress(json.dumps({"batch": batch, "sentAt": "2026-01-02T03:04:06Z"}).encode())
    basic = "Basic " + base64.b64encode(f"{secrets.segment.write_key}:".encode()).decode()
    return api_event("/v1/batch", body, {"authorization": basic, "content-encoding": "gzip"})


def build(app: Any, now: datetime) -> tuple[Any, FakeAws]:
    from huiliu import stage
    from huiliu.bus import EventBridgePublisher
    from huiliu.ingest.archive import FirehoseArchive
    from huiliu.ingest.fakes import StaticDirectory
    from huiliu.ingest.http import ApiGatewayIngest
    from huiliu.ingest.idempotency import DynamoDedupeStore
    from huiliu.ingest.metrics import PowertoolsIngestMetrics
    from huiliu.ingest.pipeline import IngestPipeline
    from huiliu.tenants import TenantSettings, new_demo_secrets

    fake = FakeAws()
    secrets = new_demo_secrets()
    secrets.wechat.mode = "compatible"  # the plain-mode row needs plain POSTs; AES works too
    pipeline = IngestPipeline(
        directory=StaticDirectory({"bench": (TenantSettings(tenant_id="bench"), secrets)}),
        dedupe=DynamoDedupeStore("idem", client=fake),
        archive=FirehoseArchive("raw", "raw", firehose=fake),
        publisher=EventBridgePublisher("bus", client=fake),
        metrics=PowertoolsIngestMetrics(),
        clock=lambda: now,
    )
    stage.configure("ingest", service=ApiGatewayIngest(pipeline))
    return secrets, fake


def timed(app: Any, event: dict[str, Any], repeat: int) -> list[float]:
    context = Context()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = app.handler(event, context)
        samples.append((time.perf_counter() - start) * 1000)
        if response["statusCode"] != 200:
            raise RuntimeError(f"benchmark request failed: {response}")
    return samples


def run(repeat: int = 300, batch_size: int = 500, batches: int = 10) -> list[dict[str, Any]]:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("AWS_REGION", "ap-east-1")
    sys.path.insert(0, str(ROOT / "shared"))
    now = datetime.now(UTC).replace(microsecond=0)
    app = load_app()
    secrets, fake = build(app, now)
    rows: list[dict[str, Any]] = []
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines go to stdout in Lambda
        for name, event in webhook_events(secrets, now).items():
            timed(app, event, 20)  # warm up (imports, caches)
            median = statistics.median(timed(app, event, repeat))
            rows.append(
                {
                    "metric": f"{name} webhook, handler CPU",
                    "value": round(median, 3),
                    "unit": "ms median",
                    "target": f"<= {TARGET_MS}",
                    "ok": median <= TARGET_MS,
                }
            )
        batch_event = segment_batch(secrets, batch_size)
        timed(app, batch_event, 2)
        before_calls, before_events = fake.calls.get("put_events", 0), fake.events
        samples = timed(app, batch_event, batches)
        per_batch_s = statistics.median(samples) / 1000
        calls = fake.calls.get("put_events", 0) - before_calls
        events = fake.events - before_events
    rate = batch_size / per_batch_s
    rows.append(
        {
            "metric": f"segment /v1/batch ({batch_size} events, gzip)",
            "value": round(rate),
            "unit": "events/s",
            "target": f">= {TARGET_EVENTS_PER_S}",
            "ok": rate >= TARGET_EVENTS_PER_S,
        }
    )
    ratio = calls / events
    rows.append(
        {
            "metric": "PutEvents calls per event (batch path)",
            "value": round(ratio, 3),
            "unit": "calls/event",
            "target": f"<= {TARGET_CALLS_PER_EVENT}",
            "ok": ratio <= TARGET_CALLS_PER_EVENT,
        }
    )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>10}  {'unit':<12}  {'target':<10}  ok")
    for r in rows:
        ok = "yes" if r["ok"] else "NO"
        print(f"{r['metric']:<{width}}  {r['value']:>10}  {r['unit']:<12}  {r['target']:<10}  {ok}")


if __name__ == "__main__":
    print_table(run())
