"""JourneysTable access — the only journeys code that talks to DynamoDB.

Items (tenant id first in every key):

=====================================  ===============  =============================================
pk                                     sk               what
=====================================  ===============  =============================================
``T#{t}#JOURNEYS``                     ``J#{id}``       journey head: status, active version (inline
                                                        definition), latest version, content hash
``T#{t}#J#{id}``                       ``V#{n:06d}``    one published version (immutable)
``T#{t}#J#{id}``                       ``FUNNEL``       funnel counters (ADD as transitions commit)
``T#{t}#J#{id}#ENR``                   ``{at}#{eid}``   enrollment index (who entered, when)
``T#{t}#P#{profile}``                  ``PROFILE``      journeys' projection of the person
``T#{t}#P#{profile}``                  ``E#{id}#{key}`` one enrollment; ``due_shard`` + ``next_at``
                                                        only while it waits on time (sparse GSI)
``T#{t}#P#{profile}``                  ``G#{id}``       entry guard (per-order bound, once per period):
                                                        ``seq``, pending ``claims``, last entry
=====================================  ===============  =============================================

One Query on ``T#{t}#P#{profile}`` loads everything an event for that person needs.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from typing import Any

from boto3.dynamodb.types import Binary

from huiliu.errors import ConditionFailed
from huiliu.journeys.interpreter import Enrollment, ProfileView
from huiliu.journeys.matching import stable_id
from huiliu.storage.dynamo import (
    DynamoRepository,
    deserialize,
    serialize,
    serialize_value,
    serialize_values,
    unprocessed_backoff,
)

DUE_INDEX = "due"
DEFAULT_SHARDS = 8
PAUSED_PREFIX = "PAUSED#"
GUARD_PREFIX = "G#"
_ENROLLMENT_FIELDS = {f.name for f in fields(Enrollment)}
# Every attribute an enrollment item may carry besides its key: a commit that replaces the item by
# an UPDATE statement removes the ones its new state does not have (REMOVE of a missing one is a no-op).
_ENROLLMENT_ATTRIBUTES = tuple(sorted(_ENROLLMENT_FIELDS | {"due_shard"}))
# BatchExecuteStatement: at most 25 statements per request. Each statement succeeds or fails on its
# own (not a transaction: billed as the single write it stands for, no 2x).
STATEMENTS_PER_BATCH = 25
# Per-statement error codes worth sending again (capacity, a transient failure, an item held by a
# concurrent transaction); ConditionalCheckFailed is a lost race; anything else is a bug and raises.
RETRYABLE_STATEMENT_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflict",
    }
)


class StatementFailed(RuntimeError):
    """A statement of a batch failed for a reason that is neither a lost race nor transient."""


def heads_pk(tenant: str) -> str:
    return f"T#{tenant}#JOURNEYS"


def journey_pk(tenant: str, journey_id: str) -> str:
    return f"T#{tenant}#J#{journey_id}"


def profile_pk(tenant: str, profile_id: str) -> str:
    return f"T#{tenant}#P#{profile_id}"


def enrollment_sk(journey_id: str, key: str) -> str:
    return f"E#{journey_id}#{key}"


def version_sk(version: int) -> str:
    return f"V#{version:06d}"


def due_shard(enrollment_id: str, shards: int) -> str:
    return f"D#{int(enrollment_id[:8], 16) % shards}"


def paused_shard(tenant: str, journey_id: str) -> str:
    return f"{PAUSED_PREFIX}{tenant}#{journey_id}"


def enrollment_item(e: Enrollment, shards: int, *, parked: str | None = None) -> dict[str, Any]:
    item = {k: v for k, v in asdict(e).items() if v not in (None, {}, [])}
    item["pk"] = profile_pk(e.tenant_id, e.profile_id)
    item["sk"] = enrollment_sk(e.journey_id, e.key)
    item["holdout"] = e.holdout
    item["rev"] = e.rev
    if e.live and e.next_at:
        item["due_shard"] = parked or due_shard(e.enrollment_id, shards)
    else:
        item.pop("next_at", None)
    # The decision log, compressed (binary): it is most of a finished enrollment's size, and
    # staying under 1 KB makes every enrollment write 1 WCU instead of 2.
    item["log"] = zlib.compress(json.dumps(e.log, separators=(",", ":")).encode(), 9)
    return item


def enrollment_from_item(item: dict[str, Any]) -> Enrollment:
    data = {k: v for k, v in item.items() if k in _ENROLLMENT_FIELDS}
    data["log"] = decode_log(data.get("log"))
    return Enrollment(**data)


def decode_log(log: Any) -> list[dict[str, Any]]:
    """A stored decision log: zlib-compressed JSON (binary), or an uncompressed JSON string (older)."""
    if isinstance(log, Binary):
        log = getattr(log, "value", b"")  # boto3's Binary (its type stub does not declare .value)
    if isinstance(log, bytes | bytearray):
        return list(json.loads(zlib.decompress(log)))
    if isinstance(log, str):
        return list(json.loads(log))
    return list(log or [])


def profile_item(tenant: str, view: ProfileView) -> dict[str, Any]:
    return {
        "pk": profile_pk(tenant, view.profile_id),
        "sk": "PROFILE",
        "version": view.version,
        "traits": view.traits,
        "tags": view.tags,
        "computed": view.computed,
        "identifiers": view.identifiers,
        "segments": view.segments,
        "seen": view.seen,
    }


def profile_from_item(profile_id: str, item: dict[str, Any] | None) -> ProfileView:
    if not item:
        return ProfileView(profile_id)
    return ProfileView(
        profile_id=profile_id,
        version=int(item.get("version", 0)),
        traits=dict(item.get("traits") or {}),
        tags=list(item.get("tags") or []),
        computed=dict(item.get("computed") or {}),
        identifiers=list(item.get("identifiers") or []),
        segments=sorted(item.get("segments") or []),
        seen=dict(item.get("seen") or {}),
    )


class JourneysRepository(DynamoRepository):
    # The tick's hot path: requests are built by this class, DynamoDB validates them anyway.
    validate_requests = False

    def __init__(self, *args: Any, shards: int = DEFAULT_SHARDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shards = shards

    # -- definitions ----------------------------------------------------------------------
    def heads(self, tenant: str) -> list[dict[str, Any]]:
        return list(self.query_all(heads_pk(tenant), sk_prefix="J#", consistent=True))

    def head(self, tenant: str, journey_id: str) -> dict[str, Any] | None:
        return self.get(heads_pk(tenant), f"J#{journey_id}")

    def version(self, tenant: str, journey_id: str, version: int) -> dict[str, Any] | None:
        return self.get(journey_pk(tenant, journey_id), version_sk(version), consistent=False)

    def versions(self, tenant: str, journey_id: str) -> list[dict[str, Any]]:
        return list(self.query_all(journey_pk(tenant, journey_id), sk_prefix="V#"))

    def publish(self, tenant: str, head: dict[str, Any], version_item: dict[str, Any], expected: int) -> None:
        """Version item and head in one transaction: both or neither (nothing half-published)."""
        head_condition = "attribute_not_exists(pk)" if expected == 0 else "latest_version = :expected"
        self.transact(
            [
                {"Put": {"item": version_item, "condition": "attribute_not_exists(pk)"}},
                {
                    "Put": {
                        "item": head,
                        "condition": head_condition,
                        "values": {":expected": expected} if expected else None,
                    }
                },
            ]
        )

    def set_status(self, tenant: str, journey_id: str, status: str, allowed_from: tuple[str, ...]) -> None:
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": status}
        allowed = []
        for i, value in enumerate(allowed_from):
            values[f":f{i}"] = value
            allowed.append(f":f{i}")
        self.update(
            heads_pk(tenant),
            f"J#{journey_id}",
            "SET #s = :s",
            condition=f"attribute_exists(pk) AND #s IN ({', '.join(allowed)})",
            names=names,
            values=values,
        )

    # -- counters -------------------------------------------------------------------------
    def add_counters(self, tenant: str, journey_id: str, counts: dict[str, int]) -> None:
        if not counts:
            return
        names = {f"#c{i}": name for i, name in enumerate(counts)}
        values = {f":v{i}": n for i, n in enumerate(counts.values())}
        expression = "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(counts)))
        self.update(journey_pk(tenant, journey_id), "FUNNEL", expression, names=names, values=values)

    def funnel(self, tenant: str, journey_id: str) -> dict[str, int]:
        item = self.get(journey_pk(tenant, journey_id), "FUNNEL") or {}
        return {k: int(v) for k, v in item.items() if k not in ("pk", "sk")}

    def index_enrollments(self, entries: list[Enrollment]) -> None:
        self.batch_write(
            [
                {
                    "pk": f"{journey_pk(e.tenant_id, e.journey_id)}#ENR",
                    "sk": f"{e.entered_at}#{e.enrollment_id}",
                    "profile_id": e.profile_id,
                    "key": e.key,
                    "holdout": e.holdout,
                }
                for e in entries
            ]
        )

    def recent_enrollments(self, tenant: str, journey_id: str, limit: int = 50) -> list[dict[str, Any]]:
        page = self.query(f"{journey_pk(tenant, journey_id)}#ENR", forward=False, limit=limit)
        return page.items

    # -- a person's partition ------------------------------------------------------------
    def load_person(self, tenant: str, profile_id: str) -> tuple[dict[str, Any] | None, list[Enrollment]]:
        profile, enrollments, _ = self.load_partition(tenant, profile_id)
        return profile, enrollments

    def load_partition(
        self, tenant: str, profile_id: str
    ) -> tuple[dict[str, Any] | None, list[Enrollment], dict[str, dict[str, Any]]]:
        """The projection, every enrollment and every entry guard of a person: one Query."""
        profile: dict[str, Any] | None = None
        enrollments: list[Enrollment] = []
        guards: dict[str, dict[str, Any]] = {}
        for item in self.query_all(profile_pk(tenant, profile_id), consistent=True):
            if item["sk"] == "PROFILE":
                profile = item
            elif item["sk"].startswith("E#"):
                enrollments.append(enrollment_from_item(item))
            elif item["sk"].startswith(GUARD_PREFIX):
                guards[item["sk"][len(GUARD_PREFIX) :]] = item
        return profile, enrollments, guards

    def claim_entry(
        self,
        tenant: str,
        profile_id: str,
        journey_id: str,
        *,
        expected_seq: int,
        claims: list[dict[str, str]],
        key: str,
        at: str,
    ) -> None:
        """Advance a person's entry guard for a journey from ``expected_seq`` (what the deciding
        read saw) — ConditionFailed when another entry decision got there first. Serialises the
        decisions that look at more than one enrollment key (per-order bound, once per period)
        without a transaction: a small conditional put, before the enrollment is published."""
        item = {
            "pk": profile_pk(tenant, profile_id),
            "sk": f"{GUARD_PREFIX}{journey_id}",
            "seq": expected_seq + 1,
            "claims": claims,
            "last_key": key,
            "last_at": at,
        }
        if expected_seq == 0:
            self.put(item, condition="attribute_not_exists(pk)")
        else:
            self.put(item, condition="seq = :s", values={":s": expected_seq})

    def enrollments_of(self, tenant: str, profile_id: str, journey_id: str | None = None) -> list[Enrollment]:
        prefix = f"E#{journey_id}#" if journey_id else "E#"
        return [
            enrollment_from_item(i)
            for i in self.query_all(profile_pk(tenant, profile_id), sk_prefix=prefix, consistent=True)
        ]

    def put_profile(self, tenant: str, view: ProfileView) -> None:
        """Keep the newest snapshot: an older profile version never overwrites a newer one."""
        with contextlib.suppress(ConditionFailed):
            self.put(
                profile_item(tenant, view),
                condition="attribute_not_exists(pk) OR version <= :v",
                values={":v": view.version},
            )

    def save_enrollment(self, e: Enrollment, *, expected_rev: int | None, parked: str | None = None) -> None:
        """Create (expected_rev None) or replace at exactly ``expected_rev``; ConditionFailed otherwise."""
        item = enrollment_item(e, self.shards, parked=parked)
        if expected_rev is None:
            self.put(item, condition="attribute_not_exists(pk)")
        else:
            self.put(item, condition="rev = :r", values={":r": expected_rev})

    def save_enrollments(self, writes: Sequence[tuple[Enrollment, int, str | None]]) -> list[bool]:
        """Replace existing enrollments, each at exactly its expected revision: ``(enrollment,
        expected_rev, parked)`` per write, 25 per ``BatchExecuteStatement`` request. Each write is a
        PartiQL ``UPDATE … WHERE pk = ? AND sk = ? AND rev = ?`` — the same conditional write on the
        version as :meth:`save_enrollment`, evaluated independently per statement (one lost race
        neither fails nor blocks the others) and billed as the one write it is. Returns, per write,
        True (committed) or False (the revision moved: ConditionalCheckFailed). Throttled or
        transiently failed statements are sent again, alone; any other statement error raises."""
        results = [False] * len(writes)
        statements = [
            (n, self._replace_statement(enrollment_item(e, self.shards, parked=parked), expected))
            for n, (e, expected, parked) in enumerate(writes)
        ]
        for start in range(0, len(statements), STATEMENTS_PER_BATCH):
            pending = statements[start : start + STATEMENTS_PER_BATCH]
            attempt = 0
            while pending:
                resp = self.client.batch_execute_statement(
                    Statements=[s for _, s in pending], ReturnConsumedCapacity="TOTAL"
                )
                self.stats.record("BatchExecuteStatement", "write", resp)
                again = []
                for (n, statement), answer in zip(pending, resp["Responses"], strict=True):
                    error = answer.get("Error")
                    if not error:
                        results[n] = True
                    elif error.get("Code") == "ConditionalCheckFailed":
                        results[n] = False
                    elif error.get("Code") in RETRYABLE_STATEMENT_ERRORS:
                        again.append((n, statement))
                    else:
                        raise StatementFailed(f"{error.get('Code')}: {error.get('Message')}")
                pending = again
                if pending:
                    attempt = unprocessed_backoff(attempt, "BatchExecuteStatement")
        return results

    def _replace_statement(self, item: dict[str, Any], expected_rev: int) -> dict[str, Any]:
        """``item`` as one PartiQL UPDATE on its key, conditional on ``rev = expected_rev`` (and on
        the item existing, as every PartiQL UPDATE is): SET each attribute it has, REMOVE the
        enrollment attributes it does not."""
        names = [k for k in item if k not in ("pk", "sk") and item[k] is not None]
        removed = [k for k in _ENROLLMENT_ATTRIBUTES if k not in item or item[k] is None]
        statement = " ".join(
            [
                f'UPDATE "{self.table_name}"',
                *(f'SET "{k}"=?' for k in names),
                *(f'REMOVE "{k}"' for k in removed),
                'WHERE "pk"=? AND "sk"=? AND "rev"=?',
            ]
        )
        values = [item[k] for k in names] + [item["pk"], item["sk"], expected_rev]
        return {"Statement": statement, "Parameters": [serialize_value(v) for v in values]}

    def get_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(i["pk"], i["sk"]): i for i in self.batch_get(keys, consistent=True)}

    def delete_person(self, tenant: str, profile_id: str) -> list[Enrollment]:
        items = list(self.query_all(profile_pk(tenant, profile_id), consistent=True))
        enrollments = [enrollment_from_item(i) for i in items if i["sk"].startswith("E#")]
        index_keys = [
            (f"{journey_pk(tenant, e.journey_id)}#ENR", f"{e.entered_at}#{e.enrollment_id}")
            for e in enrollments
        ]
        self.batch_write([], deletes=[(i["pk"], i["sk"]) for i in items] + index_keys)
        return enrollments

    # -- the due index --------------------------------------------------------------------
    def due(
        self, shard: str, upto: str, page_size: int = 100, *, keys_only: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """Chunks of ``page_size`` items waiting in ``shard`` with ``next_at <= upto`` (GSI: eventually
        consistent). One Query reads up to 1 MB (~1,000 waiting enrollments); chunks feed BatchGetItem.
        ``keys_only``: just what the tick needs to re-read them (less to transfer and parse)."""
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "due_shard = :s AND next_at BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": serialize_values({":s": shard, ":lo": "0", ":hi": upto}),
                "ReturnConsumedCapacity": "TOTAL",
            }
            if keys_only:
                kwargs["ProjectionExpression"] = "pk, sk, tenant_id, profile_id, next_at"
            if start:
                kwargs["ExclusiveStartKey"] = serialize(start)
            resp = self.client.query(**kwargs)
            self.stats.record("Query", "read", resp)
            items = [deserialize(i) for i in resp.get("Items", [])]
            for i in range(0, len(items), page_size):
                yield items[i : i + page_size]
            last = resp.get("LastEvaluatedKey")
            if not last:
                return
            start = deserialize(last)

    def all_shards(self) -> list[str]:
        return [f"D#{n}" for n in range(self.shards)]


def new_enrollment_token(*parts: str) -> str:
    return stable_id(*parts)
