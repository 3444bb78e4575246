"""Deduplication of deliveries: an in-progress / complete scheme in the idempotency table.

A key is *claimed* (status ``IN_PROGRESS``, short lease) before its event is published and marked
``COMPLETE`` (long TTL) after; a crash in between leaves a lease that expires, so the source's next
retry publishes the event instead of it being lost. Keys are ``{tenant}#{connector}#{message id}``.
Table: hash key ``id`` (S), TTL attribute ``expiration`` (epoch seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from huiliu.storage.dynamo import deserialize, serialize, serialize_values

IN_PROGRESS = "IN_PROGRESS"
COMPLETE = "COMPLETE"
# A claimed key that is not completed within this many seconds may be claimed again.
LEASE_SECONDS = 15
# Completed keys are remembered this long (Shopify retries for 4 h, Youzan up to ~2 h).
DEDUPE_TTL_SECONDS = 7 * 24 * 3600
_PARALLEL_THRESHOLD = 4
_MAX_WORKERS = 16


@dataclass
class Claim:
    new: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


class DedupeStore(Protocol):
    def claim(self, keys: Sequence[str], now: datetime) -> Claim: ...

    def complete(self, keys: Sequence[str], now: datetime) -> None: ...

    def release(self, keys: Sequence[str]) -> None: ...

    def advance_version(self, key: str, version: int, now: datetime) -> bool: ...

    def bind(self, key: str, value: str, now: datetime, ttl_seconds: int) -> bool:
        """Bind ``key`` to ``value`` for ``ttl_seconds``; False when it is bound to another value."""
        ...


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


class DynamoDedupeStore:
    """The idempotency table through boto3 (the only code here that touches AWS)."""

    def __init__(
        self,
        table_name: str,
        client: Any | None = None,
        *,
        lease_seconds: int = LEASE_SECONDS,
        ttl_seconds: int = DEDUPE_TTL_SECONDS,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self.lease_seconds = lease_seconds
        self.ttl_seconds = ttl_seconds
        self.calls = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            from huiliu import aws

            self._client = aws.client("dynamodb")
        return self._client

    def _claim_one(self, key: str, now: int) -> str:
        self.calls += 1
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": key},
                    "status": {"S": IN_PROGRESS},
                    "lease_until": {"N": str(now + self.lease_seconds)},
                    "expiration": {"N": str(now + self.ttl_seconds)},
                },
                ConditionExpression=(
                    "attribute_not_exists(id) OR expiration < :now OR (#s = :ip AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":ip": {"S": IN_PROGRESS}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self.calls += 1
            found = self.client.get_item(
                TableName=self.table_name, Key=serialize({"id": key}), ConsistentRead=True
            )
            item = deserialize(found.get("Item") or {})
            return "busy" if item.get("status") == IN_PROGRESS else "done"
        return "new"

    def claim(self, keys: Sequence[str], now: datetime) -> Claim:
        epoch = _epoch(now)
        unique = list(dict.fromkeys(keys))
        if len(unique) <= _PARALLEL_THRESHOLD:
            outcomes = [self._claim_one(k, epoch) for k in unique]
        else:  # conditional puts cannot be batched: run them on a few threads, one slice each
            workers = min(_MAX_WORKERS, len(unique))
            slices = [unique[i::workers] for i in range(workers)]
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(lambda part: [self._claim_one(k, epoch) for k in part], slices))
            by_key = {
                k: r
                for part, found in zip(slices, results, strict=True)
                for k, r in zip(part, found, strict=True)
            }
            outcomes = [by_key[k] for k in unique]
        claim = Claim()
        for key, outcome in zip(unique, outcomes, strict=True):
            getattr(claim, outcome).append(key)
        return claim

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        while requests:
            chunk, requests = requests[:25], requests[25:]
            pending: dict[str, Any] = {self.table_name: chunk}
            while pending:
                self.calls += 1
                resp = self.client.batch_write_item(RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}

    def complete(self, keys: Sequence[str], now: datetime) -> None:
        expiration = _epoch(now) + self.ttl_seconds
        if len(keys) == 1:
            self.calls += 1
            self.client.put_item(
                TableName=self.table_name,
                Item=serialize({"id": keys[0], "status": COMPLETE, "expiration": expiration}),
            )
            return
        expires = {"N": str(expiration)}
        done = {"S": COMPLETE}
        self._batch_write(
            [
                {"PutRequest": {"Item": {"id": {"S": k}, "status": done, "expiration": expires}}}
                for k in dict.fromkeys(keys)
            ]
        )

    def release(self, keys: Sequence[str]) -> None:
        self._batch_write([{"DeleteRequest": {"Key": serialize({"id": k})}} for k in dict.fromkeys(keys)])

    def advance_version(self, key: str, version: int, now: datetime) -> bool:
        self.calls += 1
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=serialize({"id": key, "version": version, "expiration": _epoch(now) + self.ttl_seconds}),
                ConditionExpression="attribute_not_exists(id) OR version <= :v",
                ExpressionAttributeValues=serialize_values({":v": version}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def bind(self, key: str, value: str, now: datetime, ttl_seconds: int) -> bool:
        self.calls += 1
        epoch = _epoch(now)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=serialize(
                    {"id": key, "status": "BOUND", "value": value, "expiration": epoch + ttl_seconds}
                ),
                ConditionExpression="attribute_not_exists(id) OR expiration < :now OR #v = :v",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues=serialize_values({":now": epoch, ":v": value}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True


class IdentityMarkerDedupe:
    """No write per event: identity's processed marker is the dedupe (docs/cost.md).

    Every key is claimed as new, so a source's retry or a replay is handed to identity again, and
    identity — whose processed marker (the event's timeline item with its out-events, kept as long
    as the timeline; docs/identity.md) follows the profile change it records — recognises it and
    republishes the same out-events instead of applying it twice. That costs nothing per event at
    ingest, where a claim and a completion cost two write units on every event to save work on the
    rare retry.
    Per-connector guards that are not about message ids (a WeChat plain-mode signature bound to its
    body, a source's version counter) still go to ``guards``.
    """

    def __init__(self, guards: DedupeStore) -> None:
        self.guards = guards

    def claim(self, keys: Sequence[str], now: datetime) -> Claim:
        return Claim(new=list(dict.fromkeys(keys)))

    def complete(self, keys: Sequence[str], now: datetime) -> None:
        return None

    def release(self, keys: Sequence[str]) -> None:
        return None

    def advance_version(self, key: str, version: int, now: datetime) -> bool:
        return self.guards.advance_version(key, version, now)

    def bind(self, key: str, value: str, now: datetime, ttl_seconds: int) -> bool:
        return self.guards.bind(key, value, now, ttl_seconds)


class MemoryDedupeStore:
    """In-memory dedupe store for unit tests and benchmarks."""

    def __init__(self, lease_seconds: int = LEASE_SECONDS) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.lease_seconds = lease_seconds

    def claim(self, keys: Sequence[str], now: datetime) -> Claim:
        epoch = _epoch(now)
        claim = Claim()
        for key in dict.fromkeys(keys):
            item = self.items.get(key)
            if item is None or (item["status"] == IN_PROGRESS and item["lease_until"] < epoch):
                self.items[key] = {"status": IN_PROGRESS, "lease_until": epoch + self.lease_seconds}
                claim.new.append(key)
            elif item["status"] == IN_PROGRESS:
                claim.busy.append(key)
            else:
                claim.done.append(key)
        return claim

    def complete(self, keys: Sequence[str], now: datetime) -> None:
        for key in keys:
            self.items[key] = {"status": COMPLETE}

    def release(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.items.pop(key, None)

    def advance_version(self, key: str, version: int, now: datetime) -> bool:
        current = self.items.get(key, {}).get("version")
        if current is not None and current > version:
            return False
        self.items[key] = {"status": COMPLETE, "version": version}
        return True

    def bind(self, key: str, value: str, now: datetime, ttl_seconds: int) -> bool:
        epoch = _epoch(now)
        item = self.items.get(key)
        if item is not None and item.get("value") != value and item.get("expiration", 0) >= epoch:
            return False
        self.items[key] = {"status": "BOUND", "value": value, "expiration": epoch + ttl_seconds}
        return True
