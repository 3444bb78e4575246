"""Notify: sends per second per invocation, DynamoDB calls per send, duplicates under injected
faults, and the CPU cost of the quiet-hours and cap decisions.

Runs the real NotifyService against an in-process moto server (DynamoDB, SES v2, SNS) and the fake
providers on localhost (WeChat, Aliyun, webhooks) — the same harness as tests/functions/notify.
Targets (issue 12): ≤ 3 DynamoDB calls per send on the happy path, 0 duplicates, each decision
≤ 1 ms of CPU.
"""

from __future__ import annotations

import random
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.notify.fakes import FakeProviders
from huiliu.notify.policy import CapRule, CapState, PolicyInput, check_cap, decide
from huiliu.notify.service import InFlight
from moto.server import ThreadedMotoServer

from tests.functions.notify.notify_helpers import new_stage, request


def _server() -> tuple[ThreadedMotoServer, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def _throughput(stage: Any, channel: str, template: str, n: int) -> dict[str, Any]:
    service = stage.service()  # one warm container
    service.handle(stage.profile(email=f"bench-{channel}@example.com"))
    stage.tenant_settings.frequency_caps = []
    before = dict(stage.stats.by_op)
    purpose = "marketing" if channel == "email" else "transactional"
    started = time.perf_counter()
    for i in range(n):
        service.handle(request(f"{channel}-{i}", channel=channel, template_id=template, purpose=purpose))
    seconds = time.perf_counter() - started
    calls = {k: v - before.get(k, 0) for k, v in stage.stats.by_op.items() if v - before.get(k, 0)}
    return {
        "measure": f"{channel}: sends/s (one container)",
        "value": round(n / seconds, 1),
        "ddb_calls_per_send": round(sum(calls.values()) / n, 2),
        "ops": ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(calls.items())),
        "target": "≤ 3 calls",
    }


def _faults(stage: Any, n: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    stage.tenant_settings.frequency_caps = []
    stage.service().handle(stage.profile(email="faults@example.com", openid="o-bench"))
    requests = []
    for i in range(n):
        channel = rng.choice(["wechat", "webhook"])
        template = "shipped" if channel == "wechat" else "crm-push"
        prefix = "/wechat/cgi-bin/message" if channel == "wechat" else "/webhook/"
        roll = rng.random()
        if roll < 0.3:  # the provider took it but the caller saw a timeout-like 5xx
            stage.fake.fail_next(prefix, status=503, reply={"errcode": -1}, accept=True)
        elif roll < 0.5:  # throttled, not taken
            stage.fake.fail_next(prefix, status=429, reply={"errcode": -1})
        requests.append(request(f"fault-{i}", channel=channel, template_id=template, purpose="transactional"))
    crashes = 0
    for req in requests:
        for attempt in range(3):  # SQS redelivers (and sometimes delivers twice)
            try:
                service = stage.service()
                if rng.random() < 0.15 and attempt == 0:  # crash after the provider call

                    def boom(*a: Any, **k: Any) -> Any:
                        raise RuntimeError("crash")

                    service.repo.finish = boom
                    crashes += 1
                service.handle(req)
            except (InFlight, RuntimeError):
                stage.clock.advance(timedelta(minutes=3))
        for due in stage.requeue.due(stage.clock.now() + timedelta(hours=1)):
            stage.clock.advance(timedelta(minutes=16))
            for _ in range(2):
                try:
                    stage.service().handle(due)
                except (InFlight, RuntimeError):
                    stage.clock.advance(timedelta(minutes=3))
    wechat = [r.body["client_msg_id"] for r in stage.fake.of_kind("wechat-template")]
    hooks = [r.headers["webhook-id"] for r in stage.fake.of_kind("webhook")]
    webhook_dupes = len(hooks) - len(set(hooks))
    return {
        "measure": f"duplicate deliveries: {n} sends, 30% taken-then-5xx, 20% throttled, {crashes} crashes",
        "value": len(wechat) - len(set(wechat)),
        "ddb_calls_per_send": "",
        "ops": f"WeChat delivered {len(set(wechat))} unique; webhooks {len(set(hooks))} ids "
        f"({webhook_dupes} redeliveries of an id, deduped by the receiver per the spec)",
        "target": "0",
    }


def _decisions(n: int) -> list[dict[str, Any]]:
    now = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    inp = PolicyInput(
        "email", "marketing", "a@x.com", None, True, None, "Asia/Shanghai", "21:00", "08:00", True
    )
    rule = CapRule(limit=3, window=timedelta(days=7), reserved=1)
    state = CapState([(int((now - timedelta(days=d)).timestamp()), f"k{d}") for d in (1, 2)], 3)
    started = time.process_time()
    for i in range(n):
        decide(inp, now + timedelta(minutes=i))
    quiet_us = (time.process_time() - started) / n * 1e6
    started = time.process_time()
    for i in range(n):
        check_cap(rule, state, now, key=f"k-{i}", priority=i % 100)
    cap_us = (time.process_time() - started) / n * 1e6
    return [
        {
            "measure": "quiet hours + consent decision: CPU µs",
            "value": round(quiet_us, 1),
            "target": "≤ 1000 µs",
        },
        {"measure": "frequency-cap decision: CPU µs", "value": round(cap_us, 1), "target": "≤ 1000 µs"},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server, endpoint = _server()
    fake = FakeProviders().start()
    try:
        n = 30 if quick else 200
        rows = []
        for channel, template in (("email", "welcome"), ("wechat", "shipped"), ("webhook", "crm-push")):
            fake.reset()
            rows.append(_throughput(new_stage(endpoint, fake), channel, template, n))
        fake.reset()
        rows.append(_faults(new_stage(endpoint, fake), 20 if quick else 100))
        rows += _decisions(2000 if quick else 20000)
        return rows
    finally:
        fake.stop()
        server.stop()


if __name__ == "__main__":
    from benchmarks.__main__ import _table

    print(_table(run(quick="--quick" in sys.argv)))
