"""Notify through the local runtime: templates applied with the CLI, sends requested over the admin
API, every channel's message visible (SES/SNS as moto records them, WeChat and webhooks in the sink)."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
from typing import Any

import pytest
from huiliu_infra.cli import main

from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration


def _cli(runtime: Any, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--api", runtime.api_url, "--key", runtime.tenant["admin_key"]])
    return code, out.getvalue()


def _admin(runtime: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the local runtime
        runtime.api_url + "/admin" + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": f"Bearer {runtime.tenant['admin_key']}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _profile_changed(runtime: Any) -> None:
    """A person with every contact point, as identity would announce them."""
    from huiliu.contracts import ConsentEntry, IdentifierRef, ProfileChanged, ProfileSnapshot

    snapshot = ProfileSnapshot(
        profile_id="p-notify",
        version=1,
        identifiers=[
            IdentifierRef(type="email", value="lilei@example.com"),
            IdentifierRef(type="phone", value="+8613800138000"),
            IdentifierRef(type="wechat_openid", value="oWx-lilei"),
        ],
        traits={"name": "李雷"},
        consent={"email": ConsentEntry(granted=True, at="2026-01-01T00:00:00Z")},
    )
    event = ProfileChanged(
        event_id="e-notify-1",
        tenant_id="demo",
        occurred_at="2026-01-01T00:00:00Z",
        profile_id="p-notify",
        version=1,
        created=True,  # a new person: notify's contact subscription hears contact changes only
        profile=snapshot,
    )
    from huiliu.bus import bus_publisher

    bus_publisher().publish([event.outgoing()])  # the bus topic, as identity publishes it


def test_templates_apply_then_every_channel_sends_and_the_runtime_shows_it(local_runtime: Any) -> None:
    # The runtime's clock is the wall clock: no quiet hours, so the marketing mail goes at any hour.
    status, current = _admin(local_runtime, "GET", "/tenant/settings")
    assert status == 200, current
    status, body = _admin(
        local_runtime,
        "PUT",
        "/tenant/settings",
        {**current, "quiet_hours": {"start": "00:00", "end": "00:00"}},
    )
    assert status == 200, body
    code, text = _cli(local_runtime, "templates", "apply", "-f", "events/notify/templates.yaml")
    assert code == 0, text
    assert "welcome: saved (version 1)" in text
    status, refused = _admin(
        local_runtime,
        "POST",
        "/templates",
        {
            "template_id": "broken",
            "channel": "email",
            "locales": {"zh-CN": {"subject": "x", "text": "{{ vars.nope }}"}},
        },
    )
    assert status == 400
    assert refused["problems"][0]["path"] == "locales.zh-CN"

    _profile_changed(local_runtime)
    assert local_runtime.drain(timeout=30)
    for key, channel, template, extra in (
        ("n-mail", "email", "welcome", {"purpose": "marketing", "variables": {"coupon": "W10"}}),
        ("n-wx", "wechat", "order-shipped", {"variables": {"order_id": "A7", "carrier": "顺丰"}}),
        ("n-sms", "sms", "login-code", {"variables": {"code": "246810"}}),
        ("n-hook", "webhook", "crm-sync", {"variables": {"what": "vip"}}),
    ):
        status, body = _admin(
            local_runtime,
            "POST",
            "/notifications",
            {
                "idempotency_key": key,
                "profile_id": "p-notify",
                "channel": channel,
                "template_id": template,
                **extra,
            },
        )
        assert status == 200, body

    def all_sent() -> list[dict[str, Any]] | None:
        with urllib.request.urlopen(local_runtime.api_url + "/_huiliu/sent", timeout=10) as resp:  # noqa: S310
            rows = json.loads(resp.read())
        return rows if {r["channel"] for r in rows} >= {"email", "wechat", "sms", "webhook"} else None

    rows = eventually(all_sent, timeout=30)
    mail = next(r for r in rows if r["channel"] == "email")
    assert mail["to"] == "lilei@example.com"
    assert mail["one_click_unsubscribe"] is True
    assert "李雷" in mail["summary"]
    assert any(r["channel"] == "wechat" and "A7" in r["summary"] for r in rows)
    assert any(r["channel"] == "sms" and "246810" in r["summary"] for r in rows)
    events = {e["detail-type"] for e in local_runtime.bus_events()}
    assert "notification.sent" in events
    assert local_runtime.queue_depths().get("NotifyEmailDLQ", 0) == 0
