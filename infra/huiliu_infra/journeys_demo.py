"""The three classic journeys in the local runtime: what they reference, and a walk through them
for ``huiliu demo`` (enrollments and the messages each journey requested, with a moved clock)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

# What the examples reference. Templates are notify's (TenantsTable ``T#{t}`` / ``TEMPLATE#{id}``),
# segments are the segments stage's (SegmentsTable ``T#{t}#SEG`` / ``DEF#{id}``).
EXAMPLE_TEMPLATES: dict[str, dict[str, Any]] = {
    "coupon-sms": {
        "channel": "sms",
        "locales": {"zh-CN": {"text": "欢迎加入！优惠券 {{ vars.coupon }} 已放入您的账户。"}},
        "sample": {"vars": {"coupon": "WELCOME10"}},
    },
    "winback-email": {
        "channel": "email",
        "locales": {"zh-CN": {"subject": "好久不见", "text": "回来看看吧：本周全场九折。"}},
    },
    # WeChat template messages are service notices (transactional only): a recommendation is
    # marketing, so it goes as a subscribe message.
    "recommend-b": {
        "channel": "wechat",
        "wechat": {"kind": "subscribe", "template_id": "demo-subscribe-recommend"},
        "locales": {"zh-CN": {"fields": {"thing1": "您可能也喜欢 {{ vars.product }}"}}},
        "sample": {"vars": {"product": "SKU-B"}},
    },
}
# The segment the win-back journey starts from: examples/segments/dormant_90_days.yaml (the demo
# applies the segment examples first).
DORMANT_SEGMENT = "dormant_90_days"


def seed_references(tenant: str) -> None:
    """Create the examples' templates through notify's template store (validated) when missing."""
    from huiliu.notify.template_store import TemplateRepository
    from huiliu.notify.templates import Template
    from huiliu.settings import get_settings

    repo = TemplateRepository(get_settings().tenants_table)
    for template_id, body in EXAMPLE_TEMPLATES.items():
        if repo.get_template(tenant, template_id) is None:
            repo.save_template(tenant, Template.model_validate({"template_id": template_id, **body}))


def apply_examples(runtime: Any, say: Any) -> None:
    """``huiliu journeys apply --examples`` against the runtime (after seeding what they reference)."""
    import contextlib
    import io

    from huiliu_infra.cli import main

    seed_references("demo")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(
            [
                "journeys",
                "apply",
                "--examples",
                "--api",
                runtime.api_url,
                "--key",
                runtime.tenant["admin_key"],
            ]
        )
    for line in buffer.getvalue().splitlines():
        if not line.startswith("{"):
            say("  " + line.split("/")[-1])


def story(runtime: Any, say: Any) -> dict[str, Any]:
    """Four shoppers walk through the three classic journeys; 16 days pass in 12-hour ticks.
    Returns what the report printed (for tests)."""
    import uuid

    from huiliu.bus import bus_publisher
    from huiliu.contracts import SegmentEntered

    from huiliu_infra import sources
    from huiliu_infra.cli_journeys import format_funnel
    from huiliu_infra.cli_profiles import call

    seg = runtime.tenant["connectors"]["segment"]

    def track(user: str, event: str, **properties: Any) -> None:
        payload = {"userId": user, "event": event, "properties": properties, "messageId": uuid.uuid4().hex}
        sources.send(sources.segment(seg, "track", payload))

    def profile_id(user: str) -> str:
        from huiliu import aws
        from huiliu.storage.dynamo import deserialize

        item = aws.client("dynamodb").get_item(
            TableName=runtime.deployment.tables["IdentityTable"],
            Key={"pk": {"S": f"T#demo#ID#user_id#{user}"}, "sk": {"S": "CLAIM"}},
        )["Item"]
        return str(deserialize(item)["profile_id"])

    runtime.bus_events()  # start from an empty tap: only this section's messages are shown
    for n, user in enumerate(("mei", "lei", "jun", "hua"), start=1):
        traits = {
            "phone": f"+86 139 0000 {n:04d}",
            "email": f"{user}@example.cn",
            "consent": {"sms": True, "email": True, "wechat": True},
        }
        payload = {"userId": user, "traits": traits, "messageId": uuid.uuid4().hex}
        sources.send(sources.segment(seg, "identify", payload))
    say("  day 0: mei and lei sign up; jun orders product A (order A-1001)")
    track("mei", "Signed Up")
    track("lei", "Signed Up")
    track("jun", "Order Completed", order_id="A-1001", products=[{"product_id": "SKU-A"}], revenue=199)
    runtime.drain(timeout=60)
    runtime.advance(timedelta(days=1), step=timedelta(hours=12))
    say("  day 1: lei orders (leaves the coupon journey at once); jun orders A again (A-1002)")
    track("lei", "Order Completed", order_id="Z-7", products=[{"product_id": "SKU-Z"}], revenue=59)
    track("jun", "Order Completed", order_id="A-1002", products=[{"product_id": "SKU-A"}], revenue=199)
    track("hua", "Signed Up")
    runtime.drain(timeout=60)
    ids = {u: profile_id(u) for u in ("mei", "lei", "jun", "hua")}
    say("  day 1: hua enters the segment dormant_90_days (as the segments stage announces it)")
    bus_publisher().publish(
        [
            SegmentEntered(
                event_id=f"demo-dormant-{ids['hua'][:12]}",
                tenant_id="demo",
                occurred_at=runtime.clock.now().isoformat(),
                segment_id=DORMANT_SEGMENT,
                profile_id=ids["hua"],
                reason="time",
            ).outgoing()
        ]
    )
    runtime.drain(timeout=60)
    say("  days 1-16: the clock moves in 12-hour steps; the journey tick runs at each")
    runtime.advance(timedelta(days=15, hours=1), step=timedelta(hours=12))
    names = {v: k for k, v in ids.items()}
    events = runtime.bus_events(limit=2000)
    requested = [
        e["detail"]
        for e in events
        if e.get("detail-type") == "notification.requested" and e.get("source") == "huiliu.journeys"
    ]
    outcomes: dict[str, str] = {}
    for e in events:  # what notify did with each (sent / suppressed / deferred / failed, and why)
        kind = str(e.get("detail-type", ""))
        if kind.startswith("notification.") and kind != "notification.requested":
            d = e["detail"]
            why = f" ({d['reason']})" if d.get("reason") else ""
            outcomes.setdefault(d["idempotency_key"], kind.split(".", 1)[1] + why)
    key = runtime.tenant["admin_key"]
    report: dict[str, Any] = {"requested": requested, "funnels": {}}
    for journey_id in ("signup-coupon", "winback", "cross-sell-b"):
        funnel = call(runtime.api_url, key, "GET", f"/journeys/{journey_id}/funnel")
        report["funnels"][journey_id] = funnel
        say("")
        say("\n".join("  " + line for line in format_funnel(funnel).splitlines()))
        shown = call(runtime.api_url, key, "GET", f"/journeys/{journey_id}")
        for e in shown["recent_enrollments"]:
            say(
                f"    enrollment {e['enrollment_id'][:10]} {names.get(e['profile_id'], e['profile_id'][:10])}"
            )
    say("\n  Messages requested (notification.requested on the bus, for notify):")
    for r in sorted(requested, key=lambda d: d["occurred_at"]):
        order = r["variables"].get("order_id")
        say(
            f"    {r['occurred_at'][:16]}  {r['journey_id']:<14} {names.get(r['profile_id'], '?'):<4} "
            f"{r['channel']:<7} fallback={','.join(r['fallback']) or '-':<6} template={r['template_id']}"
            + (f" order={order}" if order else "")
            + f"  -> notify: {outcomes.get(r['idempotency_key'], 'pending')}"
        )
    why = call(
        runtime.api_url, key, "GET", f"/journeys/why/{ids['lei']}", query={"journey_id": "signup-coupon"}
    )
    from huiliu_infra.cli_journeys import format_why

    say("\n  Why did lei get no coupon?  huiliu journeys why <lei's profile id>")
    say("\n".join("  " + line for line in format_why(why).splitlines()))
    return report
