"""``huiliu demo``'s notify part: the templates applied with the CLI, and every message sent."""

from __future__ import annotations

import contextlib
import io
from typing import Any


def apply_templates(runtime: Any) -> str:
    from huiliu_infra.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        main(
            [
                "templates",
                "apply",
                "-f",
                "events/notify/templates.yaml",
                "--api",
                runtime.api_url,
                "--key",
                runtime.tenant["admin_key"],
            ]
        )
    lines = [line for line in buffer.getvalue().splitlines() if not line.startswith("{")]  # not EMF
    return "\n".join("  " + line for line in lines)


def send_samples(runtime: Any, phone: str = "13800138000") -> str:
    """Transactional messages to the demo's main person over the admin API (POST /admin/notifications):
    an SMS code, a WeChat shipping notice, a CRM webhook, a receipt and a marketing welcome by email."""
    import json
    import urllib.request

    def admin(method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the local runtime
            runtime.api_url + "/admin" + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {runtime.tenant['admin_key']}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())

    try:
        profile_id = admin("GET", f"/profiles/lookup?phone={phone}")["profile_id"]
    except Exception as exc:  # the demo reports it and goes on
        return f"  (no profile for {phone}: {exc})"
    sends = [
        ("sms", "login-code", {"code": "246810"}),
        ("wechat", "order-shipped", {"order_id": "A-1002", "carrier": "顺丰"}),
        ("webhook", "crm-sync", {"what": "vip_upgrade"}),
        ("email", "order-receipt", {"order_id": "A-1002", "amount": "336.30"}),
        ("email", "welcome", {"coupon": "WELCOME10"}),  # marketing: sent only with email consent
    ]
    for channel, template, variables in sends:
        admin(
            "POST",
            "/notifications",
            {
                "idempotency_key": f"demo-{template}",
                "profile_id": profile_id,
                "channel": channel,
                "template_id": template,
                "variables": variables,
            },
        )
    runtime.drain(timeout=60)
    channels = ", ".join(c for c, _, _ in sends)
    return f"  POST /admin/notifications ×{len(sends)} for profile {profile_id[:12]} ({channels})"


def report(runtime: Any) -> str:
    from huiliu_infra.local import notify_sink

    rows = notify_sink.sent(runtime)
    lines = ["  the send log (MessagesTable), by channel, outcome and reason:"]
    for (channel, state, reason), count in sorted(_send_log(runtime).items()):
        lines.append(f"    {channel:<8} {state:<11} {reason or '':<40} ×{count}")
    if not rows:
        lines.append("  none sent (no journey step requested a message in this run)")
    else:
        lines.append("  what the providers got:")
    for row in rows:
        extra = "  [one-click unsubscribe]" if row.get("one_click_unsubscribe") else ""
        lines.append(
            f"  {row['channel']:<8} {row['provider']:<16} {row['to'][:30]:<30} {row['summary'][:70]}{extra}"
        )
    return "\n".join(lines)


def _send_log(runtime: Any) -> dict[tuple[str, str, str], int]:
    from huiliu import aws
    from huiliu.storage.dynamo import deserialize

    counts: dict[tuple[str, str, str], int] = {}
    paginator = aws.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=runtime.deployment.tables["MessagesTable"]):
        for raw in page.get("Items", []):
            item = deserialize(raw)
            if str(item.get("sk", "")).startswith("MSG#"):
                key = (str(item.get("channel")), str(item.get("state")), str(item.get("reason") or ""))
                counts[key] = counts.get(key, 0) + 1
    return counts
