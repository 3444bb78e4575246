"""ReportsTable: counter items per tenant (one partition), customer-month markers.

Writes per batch of bus events: one UpdateItem (ADD) per distinct counter item the batch touches
(not per event; a failed item's events alone are retried), plus per counted order one conditional
PutItem (the month's customer marker) and, for a person's first order of the month, one GetItem
(last month's marker). Reads for a report:
one Query of the tenant's partition (paginated by 1 MB), whatever the number of profiles.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

from huiliu.errors import ConditionFailed
from huiliu.observability import logger
from huiliu.reports.counters import Increments, OrderSeen, previous_month
from huiliu.storage.dynamo import DynamoRepository

MARKER_TTL_SECONDS = 100 * 86400


def report_pk(tenant: str) -> str:
    return f"T#{tenant}"


def customer_pk(tenant: str, period: str) -> str:
    return f"T#{tenant}#CUST#{period}"


class ReportsRepository(DynamoRepository):
    def apply(self, batch: Increments, *, now_epoch: int) -> set[tuple[str, str]]:
        """Write a batch's increments: one UpdateItem (ADD) per counter item. Returns the items whose
        write failed (their events are retried; every other item's events are done).

        A month item whose customer markers or whose own write failed is not written, and the
        markers this attempt created for it are deleted again, so its retry counts those customers.
        """
        batch.position = -1  # customer counts go to the month item its orders already point at
        failed: set[tuple[str, str]] = set()
        created: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for order in batch.orders:
            item = (order.tenant, f"MONTH#{order.period}")
            if item in failed:
                continue
            try:
                self._customer(order, batch, now_epoch, created.setdefault(item, []))
            except Exception:  # throttled, unreachable: the month's events are retried
                logger.warning("reports: customer marker failed", extra={"item": item[1]}, exc_info=True)
                failed.add(item)
        for (tenant, sk), counts in batch.adds.items():
            if (tenant, sk) in failed:
                continue
            try:
                self._add(tenant, sk, counts, batch)
            except Exception:
                logger.warning("reports: counter write failed", extra={"item": sk}, exc_info=True)
                failed.add((tenant, sk))
        for item in failed:
            for pk, sk in created.get(item, []):
                with contextlib.suppress(Exception):  # best effort: a leftover marker under-counts one
                    self.delete(pk, sk)
        return failed

    def _add(self, tenant: str, sk: str, counts: Counter[str], batch: Increments) -> None:
        names = {f"#f{i}": name for i, name in enumerate(counts)}
        values = {f":v{i}": value for i, value in enumerate(counts.values())}
        expression = "ADD " + ", ".join(f"#f{i} :v{i}" for i in range(len(counts)))
        if not sk.startswith("SEG#"):
            self.update(report_pk(tenant), sk, expression, names=names, values=values)
            return
        # the segment's size after this batch, for today's point of the time series
        new = self.update(
            report_pk(tenant), sk, expression, names=names, values=values, return_values="ALL_NEW"
        )
        size = (new or {}).get("size", 0)
        segment = sk.removeprefix("SEG#")
        for (t, day_sk), _ in batch.sets.items():
            if t == tenant and day_sk.startswith(f"SEGDAY#{segment}#"):
                try:
                    self.put({"pk": report_pk(tenant), "sk": day_sk, "size": size})
                except Exception:  # the counts are written; the day's point waits for the next change
                    logger.warning("reports: segment day point failed", extra={"item": day_sk}, exc_info=True)

    def _customer(
        self, order: OrderSeen, batch: Increments, now_epoch: int, created: list[tuple[str, str]]
    ) -> None:
        marker = (customer_pk(order.tenant, order.period), order.profile_id)
        try:
            self.put(
                {"pk": marker[0], "sk": marker[1], "ttl": now_epoch + MARKER_TTL_SECONDS},
                condition="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return  # already counted this month
        created.append(marker)
        sk = f"MONTH#{order.period}"
        batch.add(order.tenant, sk, "customers")
        batch.add(order.tenant, sk, "new_customers" if order.first_ever else "returning_customers")
        if order.period != "unknown" and self.get(
            customer_pk(order.tenant, previous_month(order.period)), order.profile_id, consistent=False
        ):
            batch.add(order.tenant, sk, "retained")

    def items(self, tenant: str) -> list[dict[str, Any]]:
        return list(self.query_all(report_pk(tenant)))
