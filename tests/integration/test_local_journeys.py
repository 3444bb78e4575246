"""The three classic journeys end to end on the local runtime, time moved with ``advance`` (never
slept): webhook -> ingest -> identity -> journeys (-> tick) -> notification.requested on the bus."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from huiliu import aws
from huiliu.bus import bus_publisher
from huiliu.contracts import SegmentEntered
from huiliu_infra import cli
from huiliu_infra.cli_profiles import call
from huiliu_infra.journeys_demo import seed_references
from huiliu_infra.local.provision import ROOT

from tests.integration.helpers import eventually, identity_item, segment_call

pytestmark = pytest.mark.integration


def _requested(runtime: Any, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen.extend(
        e
        for e in runtime.bus_events()
        if e.get("detail-type") == "notification.requested" and e.get("source") == "huiliu.journeys"
    )
    return [e["detail"] for e in seen]


def _profile_id(runtime: Any, user_id: str) -> str:
    claim = eventually(lambda: identity_item(runtime, f"T#demo#ID#user_id#{user_id}", "CLAIM"))
    return str(claim["profile_id"])


def _api(runtime: Any, method: str, path: str, query: dict[str, Any] | None = None) -> Any:
    return call(runtime.api_url, runtime.tenant["admin_key"], method, path, query=query)


def _journeys_cli(runtime: Any, capsys: Any, *args: str) -> str:
    args = args if args[0] == "segments" else ("journeys", *args)
    code = cli.main([*args, "--api", runtime.api_url, "--key", runtime.tenant["admin_key"]])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_the_three_classic_journeys_with_a_moved_clock(local_runtime: Any, capsys: Any) -> None:
    runtime = local_runtime
    seed_references("demo")
    segment_file = ROOT / "examples" / "segments" / "dormant_90_days.yaml"
    _journeys_cli(runtime, capsys, "segments", "apply", "-f", str(segment_file))
    applied = _journeys_cli(runtime, capsys, "apply", "--examples")
    assert "signup-coupon v1 published" in applied
    write_key = runtime.tenant["connectors"]["segment"]["write_key"]
    run = uuid.uuid4().hex[:6]
    quiet, buyer, shopper, sleeper = (f"{name}-{run}" for name in ("quiet", "buyer", "shopper", "sleeper"))

    def track(user: str, event: str, **properties: Any) -> None:
        status, _ = segment_call(
            runtime.api_url,
            write_key,
            "track",
            {"userId": user, "event": event, "properties": properties, "messageId": uuid.uuid4().hex},
        )
        assert status == 200

    # (a) two people sign up; one of them orders a day later
    track(quiet, "Signed Up")
    track(buyer, "Signed Up")
    # (c) a shopper buys product A twice (two orders), and something else once
    track(shopper, "Order Completed", order_id=f"o1-{run}", products=[{"product_id": "SKU-A"}], revenue=10)
    runtime.drain()
    ids = {u: _profile_id(runtime, u) for u in (quiet, buyer, shopper)}
    runtime.advance(timedelta(days=1), step=timedelta(hours=12))
    track(buyer, "Order Completed", order_id=f"o9-{run}", products=[{"product_id": "SKU-Z"}])
    track(shopper, "Order Completed", order_id=f"o2-{run}", products=[{"product_id": "SKU-A"}], revenue=12)
    track(shopper, "Order Completed", order_id=f"o3-{run}", products=[{"product_id": "SKU-C"}])
    runtime.drain()

    # the buyer left the coupon journey at once: nothing is waiting for them any more
    why = _api(runtime, "GET", f"/journeys/why/{ids[buyer]}", {"journey_id": "signup-coupon"})
    [enrollment] = why["enrollments"]
    assert enrollment["status"] == "exited"
    assert enrollment["exit_reason"] == "event:Order Completed"
    assert enrollment["next_at"] is None

    seen: list[dict[str, Any]] = []
    runtime.advance(timedelta(days=2, hours=1), step=timedelta(hours=6))
    coupons = [r for r in _requested(runtime, seen) if r["journey_id"] == "signup-coupon"]
    assert [(r["profile_id"], r["channel"], r["template_id"]) for r in coupons] == [
        (ids[quiet], "sms", "coupon-sms")
    ]
    assert coupons[0]["fallback"] == ["email"]

    runtime.advance(timedelta(days=13), step=timedelta(hours=12))
    recs = [r for r in _requested(runtime, seen) if r["journey_id"] == "cross-sell-b"]
    assert sorted(r["variables"]["order_id"] for r in recs) == [f"o1-{run}", f"o2-{run}"]
    assert {(r["channel"], tuple(r["fallback"]), r["template_id"]) for r in recs} == {
        ("wechat", ("email",), "recommend-b")
    }
    assert len({r["idempotency_key"] for r in recs}) == 2

    # (b) the segments stage says the sleeper became dormant (and a backfill entry for the quiet one)
    track(sleeper, "Signed Up")
    runtime.drain()
    ids[sleeper] = _profile_id(runtime, sleeper)
    publisher = bus_publisher()  # segment transitions travel on the bus topic
    now = runtime.clock.now().isoformat()
    publisher.publish(
        [
            SegmentEntered(
                event_id=f"seg-{run}-1",
                tenant_id="demo",
                occurred_at=now,
                segment_id="dormant_90_days",
                profile_id=ids[sleeper],
                reason="time",
            ).outgoing(),
            SegmentEntered(
                event_id=f"seg-{run}-2",
                tenant_id="demo",
                occurred_at=now,
                segment_id="dormant_90_days",
                profile_id=ids[quiet],
                reason="definition",
                backfill=True,
            ).outgoing(),
        ]
    )
    runtime.drain()
    winbacks = eventually(lambda: [r for r in _requested(runtime, seen) if r["journey_id"] == "winback"])
    assert [(r["profile_id"], r["channel"], r["template_id"]) for r in winbacks] == [
        (ids[sleeper], "email", "winback-email")
    ]

    # the funnel counts what happened; the tag action went back in through identity
    assert "messages requested 1" in _journeys_cli(runtime, capsys, "funnel", "signup-coupon")
    funnel = _api(runtime, "GET", "/journeys/signup-coupon/funnel")
    assert funnel["entered"] == 3
    assert funnel["messages_requested"] == 1
    assert funnel["exited"] == {"event:Order Completed": 1}
    quiet_profile = eventually(
        lambda: (
            (p := identity_item(runtime, f"T#demo#P#{ids[quiet]}", "PROFILE"))
            and "coupon-sent" in p["tags"]
            and p
        )
    )
    assert "coupon-sent" in quiet_profile["tags"]
    depths = runtime.queue_depths()
    assert depths.get("JourneysDLQ", 0) == 0
    sqs = aws.client("sqs")
    assert sqs is not None
