"""The funnel's middle through the local runtime: mail sent through notify (moto's SES with the demo
tenant's configuration set) → the emulated SES event publishing (delivery; a bounce from SES's
mailbox simulator; an open and a click by a recipient played by the test) → the default bus →
feedback → ``notification.delivered|opened|clicked|bounced`` → reports → ``GET /admin/reports``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import eventually
from tests.integration.test_local_notify import _admin, _cli

pytestmark = pytest.mark.integration

JOURNEY = "fb-journey"


def _person(runtime: Any, profile_id: str, email: str) -> None:
    """A new person, as identity announces one (on the bus wire identity uses)."""
    from huiliu.bus import bus_publisher
    from huiliu.contracts import ConsentEntry, IdentifierRef, ProfileChanged, ProfileSnapshot

    snapshot = ProfileSnapshot(
        profile_id=profile_id,
        version=1,
        identifiers=[IdentifierRef(type="email", value=email)],
        traits={"name": "读者"},
        consent={"email": ConsentEntry(granted=True, at="2026-01-01T00:00:00Z")},
    )
    event = ProfileChanged(
        event_id=f"e-{profile_id}",
        tenant_id="demo",
        occurred_at="2026-01-01T00:00:00Z",
        profile_id=profile_id,
        version=1,
        created=True,
        profile=snapshot,
    )
    bus_publisher().publish([event.outgoing()])


def test_delivery_open_click_and_bounce_reach_the_report_funnel(local_runtime: Any) -> None:
    from huiliu_infra.local import ses_events

    status, current = _admin(local_runtime, "GET", "/tenant/settings")
    assert status == 200, current
    _admin(
        local_runtime,
        "PUT",
        "/tenant/settings",
        {**current, "quiet_hours": {"start": "00:00", "end": "00:00"}},
    )
    code, text = _cli(local_runtime, "templates", "apply", "-f", "events/notify/templates.yaml")
    assert code == 0, text
    people = {"p-fb-1": "reader@example.com", "p-fb-2": "bounce@simulator.amazonses.com"}
    for profile_id, email in people.items():
        _person(local_runtime, profile_id, email)
    assert local_runtime.drain(timeout=30)
    for profile_id in people:
        status, body = _admin(
            local_runtime,
            "POST",
            "/notifications",
            {
                "idempotency_key": f"fb-{profile_id}",
                "profile_id": profile_id,
                "channel": "email",
                "template_id": "welcome",
                "purpose": "marketing",
                "journey_id": JOURNEY,
                "variables": {"coupon": "W10"},
            },
        )
        assert status == 200, body

    publisher = ses_events.active()
    assert publisher is not None

    def sent_mail() -> list[Any] | None:
        mails = [m for m in publisher.sent.values() if set(m.to) & set(people.values())]
        return mails if len(mails) == 2 else None

    mails = eventually(sent_mail, timeout=30)
    assert all(m.configuration_set == "huiliu-local-events" for m in mails)
    reader = next(m for m in mails if m.to == ["reader@example.com"])
    assert local_runtime.drain(timeout=30)
    # the recipient opens the mail twice and clicks once: the funnel counts unique opens
    assert ses_events.engage("Open", [reader.message_id, reader.message_id]) == 2
    assert ses_events.engage("Click", [reader.message_id], link="https://shop.example/w10") == 1

    def funnel() -> dict[str, Any] | None:
        assert local_runtime.drain(timeout=30)
        status, report = _admin(local_runtime, "GET", "/reports")
        assert status == 200, report
        rows = [f for f in report["funnels"] if f["journey_id"] == JOURNEY and f["channel"] == "email"]
        counts = rows[0]["counts"] if rows else {}
        return rows[0] if counts.get("clicked") and counts.get("bounced") else None

    row = eventually(funnel, timeout=60)
    counts = row["counts"]
    assert {k: counts[k] for k in ("requested", "sent", "delivered", "opened", "clicked", "bounced")} == {
        "requested": 2,
        "sent": 2,
        "delivered": 1,
        "opened": 1,
        "clicked": 1,
        "bounced": 1,
    }
    assert row["rates"]["delivered_per_sent"] == 0.5
    assert row["rates"]["opened_per_delivered"] == 1.0
    kinds = {
        e["detail-type"] for e in local_runtime.bus_events(limit=2000) if e.get("source") == "huiliu.feedback"
    }
    assert {
        "notification.delivered",
        "notification.opened",
        "notification.clicked",
        "notification.bounced",
    } <= kinds
    # the funnel above came the AWS way: SES's events on its own region's default bus, forwarded
    # to the stack's region by infra/ses-forwarder.yaml (deployed there by the local runtime)
    from huiliu import aws
    from huiliu.notify.wiring import NotifyEnv
    from huiliu_infra.cli_ses import forwarding_problems

    ses_region, stack_region = NotifyEnv.from_env().ses_region, local_runtime.deployment.region
    assert ses_region != stack_region
    events = aws.client("events", region_name=ses_region)
    assert (
        forwarding_problems(events, stack_region=stack_region, ses_region=ses_region, account="123456789012")
        == []
    )
