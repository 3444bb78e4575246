"""Admin reads: DynamoDB calls per 360-view request and per report request (moto, the real template).

1. 360 view of a profile that absorbed 10 others (each with its own older history) and holds
   1,000 timeline events: calls for the first page (target <= 4), and for a page where an absorbed
   profile holds the newest event (then its timeline is read too).
2. Report: calls per ``GET /admin/reports`` after 10, 100 and 1,000 customers' orders and segment
   entries — the same whatever the number of profiles (one Query of the tenant's counter partition).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "shared", ROOT / "infra", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

TENANT = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# one person with 11 emails (the default allows 5): ten merges by email
RULES = {"email": {"limit": 20}}


def _event(n: int, ids: list[tuple[str, str]], when: datetime, name: str = "Viewed") -> Any:
    from huiliu.models import CanonicalEvent, Identifier

    return CanonicalEvent(
        tenant_id=TENANT,
        message_id=f"m-{n}",
        type="track",
        event=name,
        timestamp=when,
        received_at=when,
        source={"connector": "segment"},
        identifiers=[Identifier(type=t, value=v) for t, v in ids],
    )


def merged_profile(
    service: Any, *, merges: int = 10, events: int = 1000, newest_absorbed: bool = False
) -> str:
    """A survivor that absorbed ``merges`` profiles (older histories), then ``events`` of its own."""
    n = 0
    for k in range(merges + 1):
        for j in range(3):
            n += 1
            service.process(_event(n, [("email", f"p{k}@x.cn")], T0 + timedelta(minutes=k * 10 + j)))
    for k in range(1, merges + 1):
        n += 1
        service.process(
            _event(n, [("email", "p0@x.cn"), ("email", f"p{k}@x.cn")], T0 + timedelta(hours=2, minutes=k))
        )
    for j in range(events):
        n += 1
        service.process(_event(n, [("email", "p0@x.cn")], T0 + timedelta(days=1, minutes=j)))
    survivor = service.repo.claim_owner(TENANT, _event(0, [("email", "p0@x.cn")], T0).identifiers[0])
    if newest_absorbed:
        # an absorbed profile's event stored before the merge but dated after everything else
        profile = service.repo.get_profile(TENANT, survivor)
        absorbed = profile.absorbed[0]
        item = {
            "pk": f"T#{TENANT}#P#{absorbed}",
            "sk": f"TL#{(T0 + timedelta(days=9)).isoformat()}#late",
            "profile_id": absorbed,
            "message_id": "late",
            "type": "track",
            "event": "Late",
            "timestamp": (T0 + timedelta(days=9)).isoformat(),
        }
        service.repo.put(item)
        stored = service.repo.get_profile(TENANT, absorbed)
        stored.computed["last_seen"] = (T0 + timedelta(days=9)).isoformat(timespec="microseconds")
        service.repo.put(stored.to_dict() | {"pk": f"T#{TENANT}#P#{absorbed}", "sk": "PROFILE"})
    return str(survivor)


def view_calls(repo: Any, profile_id: str, limit: int = 50) -> tuple[dict[str, int], dict[str, Any]]:
    from huiliu.identity.admin import ProfileAdmin
    from huiliu.storage.dynamo import CallStats

    repo.stats = CallStats()
    view = ProfileAdmin(repo).view(TENANT, profile_id, limit=limit)
    return dict(repo.stats.by_op), view


def _setup() -> Any:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = "ap-east-1"
    from huiliu import aws
    from huiliu.settings import get_settings
    from huiliu_infra.local.provision import provision

    deployment = provision(region="ap-east-1")
    os.environ.update(deployment.shared_env())
    aws.reset_clients()
    get_settings.cache_clear()
    return deployment


def run(quick: bool = False) -> list[dict[str, Any]]:
    from moto import mock_aws

    rows: list[dict[str, Any]] = []
    events = 200 if quick else 1000
    with mock_aws():
        _setup()
        from huiliu.clock import ManualClock
        from huiliu.identity.repository import IdentityRepository
        from huiliu.identity.service import IdentityService
        from huiliu.settings import get_settings
        from huiliu.tenants import TenantSettings

        settings = get_settings()
        for newest in (False, True):
            repo = IdentityRepository(settings.identity_table, salt="bench")
            service = IdentityService(
                repo,
                settings_for=lambda t: TenantSettings(tenant_id=t, identity_rules=RULES),
                clock=ManualClock(T0),
                salt="bench",
            )
            tenant_profile = merged_profile(service, events=events, newest_absorbed=newest)
            calls, view = view_calls(repo, tenant_profile)
            rows.append(
                {
                    "read": "360 view, first page (50)",
                    "case": f"10 merges, {events} events"
                    + (", newest event on an absorbed profile" if newest else ""),
                    "dynamodb calls": sum(calls.values()),
                    "by op": " ".join(f"{k}={v}" for k, v in sorted(calls.items())),
                    "target": "<= 4" if not newest else "(one more Query per absorbed profile reached)",
                    "merges shown": len(view["merges"]),
                }
            )
            # a fresh tenant-scoped world per case
            from huiliu.storage.dynamo import DynamoRepository

            for item in list(
                DynamoRepository(settings.identity_table).client.scan(TableName=settings.identity_table)[
                    "Items"
                ]
            ):
                DynamoRepository(settings.identity_table).client.delete_item(
                    TableName=settings.identity_table, Key={"pk": item["pk"], "sk": item["sk"]}
                )
        rows += report_rows(settings, sizes=(10, 100) if quick else (10, 100, 1000))
        rows += counter_write_rows(settings)
    return rows


def report_rows(settings: Any, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    import json

    from huiliu.reports.document import build
    from huiliu.reports.repository import ReportsRepository
    from huiliu.reports.stage import ReportsStage
    from huiliu.storage.dynamo import CallStats

    rows = []
    done = 0
    stage = ReportsStage(ReportsRepository(settings.reports_table), now=lambda: 1_800_000_000)
    for size in sizes:
        bodies = []
        for i in range(done, size):
            order = {
                "tenant_id": TENANT,
                "profile_id": f"p{i}",
                "event": {"name": "Order Completed", "timestamp": "2026-11-03T00:00:00Z", "properties": {}},
                "changed": {"computed": {"order_count": 1}},
                "profile": {"computed": {"order_count": 1}},
            }
            entered = {
                "tenant_id": TENANT,
                "segment_id": "all",
                "profile_id": f"p{i}",
                "occurred_at": "2026-11-03",
            }
            bodies.append(json.dumps({"detail-type": "profile.changed", "detail": order}))
            bodies.append(json.dumps({"detail-type": "segment.entered", "detail": entered}))
        for start in range(0, len(bodies), 100):
            stage.handle(bodies[start : start + 100])
        done = size
        stats = CallStats()
        report = build(TENANT, ReportsRepository(settings.reports_table, stats=stats).items(TENANT))
        rows.append(
            {
                "read": "report (GET /admin/reports)",
                "case": f"{size} customers",
                "dynamodb calls": stats.reads + stats.writes,
                "by op": " ".join(f"{k}={v}" for k, v in sorted(stats.by_op.items())),
                "target": "independent of profiles",
                "merges shown": f"buyers={report.customers[0].customers}",
            }
        )
    return rows


def counter_write_rows(settings: Any) -> list[dict[str, Any]]:
    """Reports stage writes for one SQS batch of 100 pipeline events (a mix like the pipeline's:
    send requests and outcomes of 2 journeys x 2 channels, transitions of 3 segments, 20 orders of
    20 people, ingest counts of 2 connectors): calls per event."""
    import json

    from huiliu.reports.repository import ReportsRepository
    from huiliu.reports.stage import ReportsStage
    from huiliu.storage.dynamo import CallStats

    def bus(kind: str, **detail: Any) -> str:
        return json.dumps({"detail-type": kind, "detail": {"tenant_id": "mix", **detail}})

    bodies = []
    for i in range(40):
        step = ["requested", "sent", "delivered", "opened"][i % 4]
        bodies.append(bus(f"notification.{step}", event_id=f"n{i}", journey_id=f"j{i % 2}",
                          channel=["email", "sms"][i // 20]))  # fmt: skip
    for i in range(30):
        bodies.append(
            bus("segment.entered", event_id=f"s{i}", segment_id=f"seg{i % 3}", occurred_at="2026-11-03")
        )
    for i in range(20):
        order = {
            "name": "Order Completed",
            "timestamp": "2026-11-03T00:00:00Z",
            "properties": {"revenue": 10},
        }
        first = {"computed": {"order_count": 1}}
        bodies.append(bus("profile.changed", event_id=f"o{i}", profile_id=f"p{i}", event=order,
                          changed=first, profile=first))  # fmt: skip
    for i in range(10):
        connector = ["shopify", "youzan"][i % 2]
        bodies.append(
            bus("ingest.counted", event_id=f"c{i}", day="2026-11-03", connector=connector, ingested=7)
        )
    stats = CallStats()
    ReportsStage(ReportsRepository(settings.reports_table, stats=stats), now=lambda: 1_800_000_000).handle(
        bodies
    )
    per_event = (stats.reads + stats.writes) / len(bodies)
    return [
        {
            "read": "reports stage: one batch (writes)",
            "case": "100 mixed events: 40 sends, 30 transitions, 20 orders, 10 ingest counts",
            "dynamodb calls": stats.reads + stats.writes,
            "by op": " ".join(f"{k}={v}" for k, v in sorted(stats.by_op.items())),
            "target": f"{per_event:.2f} calls/event (per-event ADD: 1.00 + orders)",
            "merges shown": "-",
        }
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import _table

    print(_table(run(quick="--quick" in sys.argv)))
