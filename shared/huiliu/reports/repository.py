"""ReportsTable: counter items per tenant (one partition), customer-month markers.

Writes per batch of bus events: one UpdateItem (ADD) per distinct counter item the batch touches
(not per event), plus per counted order one conditional PutItem (the month's customer marker) and,
for a person's first order of the month, one GetItem (last month's marker). Reads for a report:
one Query of the tenant's partition (paginated by 1 MB), whatever the number of profiles.
"""

from __future__ import annotations

from typing import Any

from huiliu.errors import ConditionFailed
from huiliu.reports.counters import Increments, OrderSeen, previous_month
from huiliu.storage.dynamo import DynamoRepository

MARKER_TTL_SECONDS = 100 * 86400


def report_pk(tenant: str) -> str:
    return f"T#{tenant}"


def customer_pk(tenant: str, period: str) -> str:
    return f"T#{tenant}#CUST#{period}"


class ReportsRepository(DynamoRepository):
    def apply(self, batch: Increments, *, now_epoch: int) -> None:
        for order in batch.orders:
            self._customer(order, batch, now_epoch)
        for (tenant, sk), counts in batch.adds.items():
            names = {f"#f{i}": name for i, name in enumerate(counts)}
            values = {f":v{i}": value for i, value in enumerate(counts.values())}
            expression = "ADD " + ", ".join(f"#f{i} :v{i}" for i in range(len(counts)))
            if sk.startswith("SEG#"):
                # the segment's size after this batch, for today's point of the time series
                new = self.update(
                    report_pk(tenant), sk, expression, names=names, values=values, return_values="ALL_NEW"
                )
                size = (new or {}).get("size", 0)
                segment = sk.removeprefix("SEG#")
                for (t, day_sk), _ in batch.sets.items():
                    if t == tenant and day_sk.startswith(f"SEGDAY#{segment}#"):
                        self.put({"pk": report_pk(tenant), "sk": day_sk, "size": size})
            else:
                self.update(report_pk(tenant), sk, expression, names=names, values=values)

    def _customer(self, order: OrderSeen, batch: Increments, now_epoch: int) -> None:
        try:
            self.put(
                {
                    "pk": customer_pk(order.tenant, order.period),
                    "sk": order.profile_id,
                    "ttl": now_epoch + MARKER_TTL_SECONDS,
                },
                condition="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return  # already counted this month
        sk = f"MONTH#{order.period}"
        batch.add(order.tenant, sk, "customers")
        batch.add(order.tenant, sk, "new_customers" if order.first_ever else "returning_customers")
        if order.period != "unknown" and self.get(
            customer_pk(order.tenant, previous_month(order.period)), order.profile_id, consistent=False
        ):
            batch.add(order.tenant, sk, "retained")

    def items(self, tenant: str) -> list[dict[str, Any]]:
        return list(self.query_all(report_pk(tenant)))
