"""A small DynamoDB repository base: typed (de)serialisation, conditional writes, paging.

Every table uses generic ``pk`` / ``sk`` keys with the tenant id first (DESIGN §3).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from huiliu.errors import ConditionFailed

_ser = TypeSerializer()
_de = TypeDeserializer()
# Cancellation reasons that mean "another writer got there first": retrying from a fresh read can
# succeed. Any other reason (ValidationError, ItemCollectionSizeLimitExceeded, throttling …) is not a
# race and must not be retried as one.
RACE_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
_REASONS_IN_MESSAGE = re.compile(r"\[([^\]]*)\]\s*$")


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    if isinstance(value, set | frozenset):
        return {_to_dynamo(v) for v in value}
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        # An integral number of up to 38 digits is an int; a larger one (1E+50, written from a
        # float) stays a float, so writing it back does not need more than 38 digits.
        if value == value.to_integral_value() and value.adjusted() < 38:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_de.deserialize(v)) for k, v in item.items()}


def serialize_value(value: Any) -> dict[str, Any]:
    """One plain-python value as a DynamoDB AttributeValue (a PartiQL statement's parameter)."""
    return dict(_ser.serialize(_to_dynamo(value)))


def serialize_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_to_dynamo(v)) for k, v in values.items()}


def cancellation_reasons(exc: ClientError) -> list[str]:
    """The per-item reason codes of a TransactionCanceledException (``"None"`` for items that
    were fine), from the response's ``CancellationReasons`` or, failing that, from the message."""
    reasons = exc.response.get("CancellationReasons")
    if isinstance(reasons, list):
        return [str(r.get("Code") or "None") for r in reasons if isinstance(r, dict)]
    found = _REASONS_IN_MESSAGE.search(str(exc.response.get("Error", {}).get("Message", "")))
    return [code.strip() for code in found.group(1).split(",")] if found else []


def is_race(exc: ClientError) -> bool:
    """True when a cancelled transaction lost a race and nothing else went wrong."""
    codes = {c for c in cancellation_reasons(exc) if c not in ("None", "")}
    return bool(codes) and codes <= RACE_REASONS


BATCH_RETRIES = 8
BATCH_BACKOFF_SECONDS = 0.05


class UnprocessedItems(RuntimeError):
    """DynamoDB kept returning unprocessed items (throttling): the caller's record is retried."""


def unprocessed_backoff(attempt: int, operation: str) -> int:
    """Wait before re-sending what a batch call left unprocessed (exponential, full jitter, as AWS
    recommends); give up after BATCH_RETRIES so SQS redelivers rather than a Lambda spinning."""
    import random
    import time

    if attempt >= BATCH_RETRIES:
        raise UnprocessedItems(f"{operation}: items still unprocessed after {attempt} retries")
    time.sleep(random.uniform(0, min(BATCH_BACKOFF_SECONDS * 2**attempt, 2.0)))
    return attempt + 1


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None = None


@dataclass
class CallStats:
    """Counts calls and consumed capacity (for benchmarks and cost figures)."""

    reads: int = 0
    writes: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    by_op: dict[str, int] = field(default_factory=dict)

    def record(self, op: str, kind: str, response: Mapping[str, Any] | None = None) -> None:
        self.by_op[op] = self.by_op.get(op, 0) + 1
        units = 0.0
        if response:
            consumed = response.get("ConsumedCapacity")
            if isinstance(consumed, list):
                units = sum(c.get("CapacityUnits", 0.0) for c in consumed)
            elif isinstance(consumed, dict):
                units = consumed.get("CapacityUnits", 0.0)
        if kind == "read":
            self.reads += 1
            self.read_units += units
        else:
            self.writes += 1
            self.write_units += units


class DynamoRepository:
    """Base class: subclasses add domain methods on top of these primitives."""

    # Repositories on a hot path set this False: their client skips botocore's client-side parameter
    # validation (huiliu.aws.client(validate=False)); requests are built here, not from input.
    validate_requests = True

    def __init__(self, table_name: str, client: Any | None = None, stats: CallStats | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self.stats = stats or CallStats()

    @property
    def client(self) -> Any:
        """The injected client, else the factory's cached one for the current endpoint (looked up
        per call — a dict lookup — so a long-lived repository never holds a client for an endpoint
        that has gone, as when the local runtime restarts in one process)."""
        if self._client is not None:
            return self._client
        from huiliu import aws

        return aws.client("dynamodb", validate=self.validate_requests)

    # -- reads -----------------------------------------------------------------------------
    def get(self, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=serialize({"pk": pk, "sk": sk}),
            ConsistentRead=consistent,
            ReturnConsumedCapacity="TOTAL",
        )
        self.stats.record("GetItem", "read", resp)
        item = resp.get("Item")
        return deserialize(item) if item else None

    def batch_get(self, keys: list[tuple[str, str]], *, consistent: bool = True) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pending = [serialize({"pk": pk, "sk": sk}) for pk, sk in dict.fromkeys(keys)]
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.table_name: {"Keys": chunk, "ConsistentRead": consistent}}
            attempt = 0
            while request:
                resp = self.client.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
                self.stats.record("BatchGetItem", "read", resp)
                found.extend(deserialize(i) for i in resp.get("Responses", {}).get(self.table_name, []))
                request = resp.get("UnprocessedKeys") or {}
                if request:
                    attempt = unprocessed_backoff(attempt, "BatchGetItem")
        return found

    def query(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        sk_between: tuple[str, str] | None = None,
        index: str | None = None,
        pk_name: str = "pk",
        sk_name: str = "sk",
        limit: int | None = None,
        forward: bool = True,
        start_key: dict[str, Any] | None = None,
        consistent: bool = False,
    ) -> Page:
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": pk}
        condition = "#pk = :pk"
        if sk_prefix is not None:
            names["#sk"] = sk_name
            values[":sk"] = sk_prefix
            condition += " AND begins_with(#sk, :sk)"
        elif sk_between is not None:
            names["#sk"] = sk_name
            values[":lo"], values[":hi"] = sk_between
            condition += " AND #sk BETWEEN :lo AND :hi"
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize_values(values),
            "ScanIndexForward": forward,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = consistent
        if limit:
            kwargs["Limit"] = limit
        if start_key:
            kwargs["ExclusiveStartKey"] = serialize(start_key)
        resp = self.client.query(**kwargs)
        self.stats.record("Query", "read", resp)
        last = resp.get("LastEvaluatedKey")
        return Page([deserialize(i) for i in resp.get("Items", [])], deserialize(last) if last else None)

    def query_all(self, pk: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            page = self.query(pk, start_key=start, **kwargs)
            yield from page.items
            if not page.next_key:
                return
            start = page.next_key

    # -- writes ----------------------------------------------------------------------------
    @staticmethod
    def _conditions(
        condition: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if condition:
            extra["ConditionExpression"] = condition
        if names:
            extra["ExpressionAttributeNames"] = dict(names)
        if values:
            extra["ExpressionAttributeValues"] = serialize_values(values)
        return extra

    def _write(self, op: str, call: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """One single-item write; a failed condition becomes ConditionFailed."""
        try:
            resp = call(TableName=self.table_name, ReturnConsumedCapacity="TOTAL", **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed(str(exc)) from exc
            raise
        self.stats.record(op, "write", resp)
        return resp

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs = {"Item": serialize(item), **self._conditions(condition, names, values)}
        self._write("PutItem", self.client.put_item, kwargs)

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Create an item only if its key is free; ConditionFailed otherwise."""
        self.put(item, condition="attribute_not_exists(pk)")

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_values: str = "NONE",
    ) -> dict[str, Any] | None:
        kwargs = {
            "Key": serialize({"pk": pk, "sk": sk}),
            "UpdateExpression": expression,
            "ReturnValues": return_values,
            **self._conditions(condition, names, values),
        }
        attrs = self._write("UpdateItem", self.client.update_item, kwargs).get("Attributes")
        return deserialize(attrs) if attrs else None

    def delete(self, pk: str, sk: str, *, condition: str | None = None) -> None:
        kwargs = {"Key": serialize({"pk": pk, "sk": sk}), **self._conditions(condition, None, None)}
        self._write("DeleteItem", self.client.delete_item, kwargs)

    def transact(self, operations: list[dict[str, Any]]) -> None:
        """TransactWriteItems with plain-python items; ConditionFailed if any condition fails.

        Only a lost race (conditional check failed, transaction conflict) becomes ConditionFailed;
        a transaction cancelled for any other reason (a validation error, an item too large,
        throttling) re-raises the ClientError, so callers fail instead of retrying it as contention.

        Each operation is ``{"Put": {"item": {...}, "condition": ...}}``,
        ``{"Update": {"pk":, "sk":, "expression":, "condition":, "names":, "values":}}``,
        ``{"Delete": {"pk":, "sk":, "condition":}}`` or ``{"ConditionCheck": {...}}``.
        """
        items: list[dict[str, Any]] = []
        for op in operations:
            ((kind, spec),) = op.items()
            body: dict[str, Any] = {"TableName": spec.get("table", self.table_name)}
            if kind == "Put":
                body["Item"] = serialize(spec["item"])
            else:
                body["Key"] = serialize({"pk": spec["pk"], "sk": spec["sk"]})
            if kind == "Update":
                body["UpdateExpression"] = spec["expression"]
            body.update(self._conditions(spec.get("condition"), spec.get("names"), spec.get("values")))
            items.append({kind: body})
        try:
            resp = self.client.transact_write_items(TransactItems=items, ReturnConsumedCapacity="TOTAL")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException" and is_race(exc):
                raise ConditionFailed(str(exc)) from exc
            raise
        self.stats.record("TransactWriteItems", "write", resp)

    def batch_write(self, puts: Sequence[Mapping[str, Any]], deletes: Sequence[tuple[str, str]] = ()) -> None:
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": serialize(i)}} for i in puts] + [
            {"DeleteRequest": {"Key": serialize({"pk": pk, "sk": sk})}} for pk, sk in deletes
        ]
        while requests:
            chunk, requests = requests[:25], requests[25:]
            pending: dict[str, Any] = {self.table_name: chunk}
            attempt = 0
            while pending:
                resp = self.client.batch_write_item(RequestItems=pending, ReturnConsumedCapacity="TOTAL")
                self.stats.record("BatchWriteItem", "write", resp)
                pending = resp.get("UnprocessedItems") or {}
                if pending:
                    attempt = unprocessed_backoff(attempt, "BatchWriteItem")
