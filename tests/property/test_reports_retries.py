"""Reports counters under failed writes, retries and duplicate deliveries: whatever fails and is
retried, the final counts equal one clean pass over the distinct events.

The repository is the real ``ReportsRepository.apply`` over an in-memory table (DynamoDB's
UpdateItem ADD, conditional PutItem, GetItem, DeleteItem semantics) that throttles chosen writes."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError
from huiliu.errors import ConditionFailed
from huiliu.reports.document import build
from huiliu.reports.repository import ReportsRepository
from huiliu.reports.stage import ReportsStage
from hypothesis import given, settings
from hypothesis import strategies as st

TENANT = "shop-a"


class FlakyMemoryReports(ReportsRepository):
    def __init__(self) -> None:
        super().__init__("memory")
        self.items_: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail: set[str] = set()  # sk prefixes whose writes are throttled on this attempt
        self.writes = 0

    def _throttle(self, sk: str) -> None:
        if any(sk.startswith(p) for p in self.fail):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "UpdateItem",
            )

    def update(self, pk: str, sk: str, expression: str, **kw: Any) -> dict[str, Any] | None:  # type: ignore[override]
        self._throttle(sk)
        self.writes += 1
        item = self.items_.setdefault((pk, sk), {"pk": pk, "sk": sk})
        for alias, name in kw["names"].items():
            item[name] = item.get(name, 0) + kw["values"][alias.replace("#f", ":v")]
        return dict(item)

    def put(self, item: Any, *, condition: str | None = None, **kw: Any) -> None:  # type: ignore[override]
        key = (item["pk"], item["sk"])
        self._throttle(item["sk"] if item["pk"].count("#") == 1 else "MARKER")
        if condition and key in self.items_:
            raise ConditionFailed("exists")
        self.items_[key] = dict(item)

    def get(self, pk: str, sk: str, **kw: Any) -> dict[str, Any] | None:  # type: ignore[override]
        return self.items_.get((pk, sk))

    def delete(self, pk: str, sk: str, **kw: Any) -> None:  # type: ignore[override]
        self.items_.pop((pk, sk), None)

    def items(self, tenant: str) -> list[dict[str, Any]]:
        return [v for (pk, _), v in sorted(self.items_.items()) if pk == f"T#{tenant}"]


def _event(kind: str, n: int) -> str:
    if kind == "order":
        detail = {
            "tenant_id": TENANT,
            "event_id": f"o{n}",
            "profile_id": f"p{n % 5}",
            "event": {"name": "Order Completed", "properties": {"revenue": 10},
                      "timestamp": f"2026-0{1 + 2 * (n % 2)}-0{1 + n % 9}T00:00:00Z"},
            "changed": {"computed": {"order_count": 1 + n // 5}},
            "profile": {"computed": {"order_count": 1 + n // 5}},
        }  # fmt: skip
        return json.dumps({"detail-type": "profile.changed", "detail": detail})
    if kind == "segment":
        detail = {"tenant_id": TENANT, "event_id": f"s{n}", "segment_id": f"seg{n % 2}",
                  "occurred_at": "2026-11-02T00:00:00Z"}  # fmt: skip
        return json.dumps({"detail-type": "segment.entered", "detail": detail})
    if kind == "ingested":
        detail = {"tenant_id": TENANT, "message_id": f"m{n}", "received_at": "2026-11-02T00:00:00Z",
                  "source": {"connector": ["shopify", "youzan"][n % 2]}}  # fmt: skip
        return json.dumps({"detail-type": "event.ingested", "detail": detail})
    step = ["requested", "sent", "delivered", "opened", "clicked"][n % 5]
    detail = {"tenant_id": TENANT, "event_id": f"{kind}{n}", "journey_id": f"j{n % 3}", "channel": "email"}
    return json.dumps({"detail-type": f"notification.{step}", "detail": detail})


def _summary(repo: FlakyMemoryReports) -> Any:
    report = build(TENANT, repo.items(TENANT)).model_dump()
    for seg in report["segments"]:
        seg.pop("series")  # a day's point is the size at the day's last *write*: not a sum
    return report


events = st.lists(
    st.tuples(st.sampled_from(["order", "segment", "ingested", "note"]), st.integers(0, 40)),
    min_size=1,
    max_size=40,
)
prefixes = st.sets(st.sampled_from(["FUNNEL#", "SEG#", "MONTH#", "INGEST#", "MARKER"]))


@settings(max_examples=60, deadline=None)
@given(
    events=events,
    failures=st.lists(prefixes, min_size=0, max_size=4),
    duplicated=st.lists(st.integers(0, 39), max_size=10),
)
def test_retried_and_redelivered_events_end_counted_exactly_once(
    events: list[tuple[str, int]], failures: list[set[str]], duplicated: list[int]
) -> None:
    bodies = list(dict.fromkeys(_event(kind, n) for kind, n in events))
    clean = FlakyMemoryReports()
    ReportsStage(clean, now=lambda: 1).handle(bodies)

    flaky = FlakyMemoryReports()
    stage = ReportsStage(flaky, now=lambda: 1)
    # SQS delivers some events twice in the batch, then retries only what was reported failed
    pending = bodies + [bodies[i % len(bodies)] for i in duplicated]
    for attempt in [*failures, set()]:
        flaky.fail = attempt
        outcome = stage.handle(pending)
        pending = [pending[p] for p in outcome.failed]
        if not pending:
            break
    assert pending == []
    assert _summary(flaky) == _summary(clean)


def test_a_throttled_item_fails_only_its_own_events_and_one_write_per_item_per_batch() -> None:
    repo = FlakyMemoryReports()
    stage = ReportsStage(repo, now=lambda: 1)
    bodies = [_event("note", n) for n in range(30)] + [_event("ingested", n) for n in range(10)]
    repo.fail = {"INGEST#"}

    outcome = stage.handle(bodies)

    assert outcome.failed == list(range(30, 40))
    assert repo.writes == 3  # 30 notification events of 3 journeys: one UpdateItem per funnel item
    assert Counter(i["sk"].split("#")[0] for i in repo.items(TENANT)) == {"FUNNEL": 3}
