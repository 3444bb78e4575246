"""Identity storage: the only identity code that talks to DynamoDB (docs/identity.md, "Storage").

Items (tenant id first in every key):

==============================  ==================  =============================================
pk                              sk                  what
==============================  ==================  =============================================
T#{t}#ID#{type}#{value}         CLAIM               identifier claim -> ``profile_id``
T#{t}#P#{profile_id}            PROFILE             the profile (``version`` for optimistic locks)
T#{t}#P#{profile_id}            TL#{ts iso}#{msg}   timeline item (``ttl``) = the processed marker:
                                                    ``out``, the out-events (no identifiers)
T#{t}#P#{survivor_id}           MERGE#{merge_id}    merge record (gsi1: T#{t}#MERGEOF#{absorbed})
T#{t}#MSG#{connector}#{msg}     PROCESSED           processed marker (written before the timeline
                                                    item carried it; still read and erased)
T#{t}#ORDER#{order_id}          COUNTED / REFUNDED  an order counted once per order id
T#{t}#ERASED#{hmac}             ERASED              salted hash of an erased identifier
==============================  ==================  =============================================

A live profile item also carries ``gsi2pk = T#{t}#PROFILES#{shard}`` / ``gsi2sk = profile_id``: the
per-tenant profile index (``gsi2``, keys only, 16 shards so a big tenant's index writes spread over
partitions) that snapshot replay pages through without a table scan. A tombstone leaves the index.
Keys-only: a profile update that keeps the keys writes nothing to the index.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from huiliu.errors import ConditionFailed
from huiliu.identity.profile import Profile
from huiliu.models import Identifier
from huiliu.storage.dynamo import CallStats, DynamoRepository, Page, deserialize, serialize

PROFILE_SK = "PROFILE"
CLAIM_SK = "CLAIM"
MARKER_SK = "PROCESSED"
ERASED_SK = "ERASED"
TIMELINE_PREFIX = "TL#"
MERGE_PREFIX = "MERGE#"
TRANSACTION_LIMIT = 100
_ABSENT: dict[str, Any] = {"condition": "attribute_not_exists(pk)", "expect": ("absent",)}


def _conditional_put(item: dict[str, Any], attribute: str, expected: Any) -> dict[str, Any]:
    """A transactional Put that wins only if the item is new (``expected`` None) or still has
    ``attribute == expected`` (optimistic locking); ``expect`` lets the in-memory fake check it too."""
    if expected is None:
        return {"Put": {"item": item, **_ABSENT}}
    return {
        "Put": {
            "item": item,
            "condition": f"{attribute} = :expected",
            "values": {":expected": expected},
            "expect": ("eq", attribute, expected),
        }
    }


def claim_pk(tenant: str, ident: Identifier) -> str:
    return f"T#{tenant}#ID#{ident.type}#{ident.value}"


def profile_pk(tenant: str, profile_id: str) -> str:
    return f"T#{tenant}#P#{profile_id}"


def marker_pk(tenant: str, connector: str, message_id: str) -> str:
    return f"T#{tenant}#MSG#{connector}#{message_id}"


def timeline_sk(timestamp_iso: str, message_id: str) -> str:
    """The sort key of an event's timeline item: deterministic from the event (its time and id)."""
    return f"{TIMELINE_PREFIX}{timestamp_iso}#{message_id}"


def processed_keys(items: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """(tenant, connector, message id) of every event the identity items say was applied: a
    timeline item carrying its out-events, or a processed marker written before those did."""
    found: set[tuple[str, str, str]] = set()
    for item in items:
        pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
        if sk == MARKER_SK and "#MSG#" in pk:
            tenant, rest = pk[2:].split("#MSG#", 1)
            connector, _, message_id = rest.partition("#")
            found.add((tenant, connector, message_id))
        elif sk.startswith(TIMELINE_PREFIX) and "out" in item and "#P#" in pk:
            connector = str((item.get("source") or {}).get("connector", ""))
            found.add((pk[2:].split("#P#", 1)[0], connector, str(item.get("message_id"))))
    return found


def order_key(tenant: str, order_id: str, kind: str) -> tuple[str, str]:
    return f"T#{tenant}#ORDER#{order_id}", kind


def order_item(tenant: str, order_id: str, kind: str, profile_id: str, event_key: str) -> dict[str, Any]:
    """An order counted once: by the event whose applied-event key it names (its redelivery counts
    it again on a profile that has not applied it; any other event of the order does not)."""
    pk, sk = order_key(tenant, order_id, kind)
    return {"pk": pk, "sk": sk, "profile_id": profile_id, "event_key": event_key}


def identifier_hash(salt: str, tenant: str, ident: Identifier) -> str:
    message = f"{tenant}#{ident.type}#{ident.value}".encode()
    return hmac.new(salt.encode(), message, hashlib.sha256).hexdigest()


def merge_of_pk(tenant: str, absorbed_id: str) -> str:
    """gsi1 key of the merge records that absorbed ``absorbed_id`` (erase finds them)."""
    return f"T#{tenant}#MERGEOF#{absorbed_id}"


MAX_CURSOR = 400
PROFILE_INDEX = "gsi2"
PROFILE_SHARDS = 16


def profile_shard(profile_id: str) -> int:
    return int(hashlib.sha256(profile_id.encode()).hexdigest()[:8], 16) % PROFILE_SHARDS


def profile_index_pk(tenant: str, shard: int) -> str:
    return f"T#{tenant}#PROFILES#{shard:02d}"


def valid_cursor(cursor: str) -> bool:
    """A timeline cursor is a timeline sort key: ``TL#…``, bounded in length."""
    return cursor.startswith(TIMELINE_PREFIX) and len(cursor) <= MAX_CURSOR


def erased_pk(tenant: str, digest: str) -> str:
    return f"T#{tenant}#ERASED#{digest}"


@dataclass
class Snapshot:
    """What one read returned for an event."""

    claims: dict[Identifier, str] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    erased: dict[Identifier, str] = field(default_factory=dict)  # identifier -> erased_at
    marker: dict[str, Any] | None = None
    # (order_id, kind) already counted -> the applied-event key of the event that claimed it ("" if
    # written before order markers named their event)
    orders: dict[tuple[str, str], str] = field(default_factory=dict)
    missing_profiles: set[str] = field(default_factory=set)


@dataclass
class WriteSet:
    """Everything one event (or admin action) writes, committed in one transaction."""

    profiles: list[tuple[Profile, int | None]] = field(default_factory=list)  # (profile, expected version)
    claims: list[tuple[Identifier, str, str | None]] = field(default_factory=list)  # (id, owner, expected)
    timeline: dict[str, Any] | None = None  # the event's timeline item, its processed marker too
    # the timeline item may follow the transaction (its loss is rebuilt from the applied-event ring:
    # the event's only out-event is profile.changed, which the rebuild republishes)
    timeline_after: bool = False
    # (order_id, kind, profile_id, applied-event key of the event counting it)
    orders: list[tuple[str, str, str, str]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    merge_updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (pk, sk, item)

    def plain(self) -> bool:
        """Only an existing profile's update plus its timeline item (the known-person path):
        nothing that has to change atomically with the profile."""
        return (
            len(self.profiles) == 1
            and self.profiles[0][1] is not None
            and not (self.claims or self.orders or self.merges or self.merge_updates)
            and self.timeline is not None
        )

    def size(self) -> int:
        return (
            len(self.profiles)
            + len(self.claims)
            + len(self.orders)
            + len(self.merges)
            + len(self.merge_updates)
            + (self.timeline is not None)
        )


class IdentityRepository(DynamoRepository):
    """Profiles, claims, timeline, merge records, markers in the identity table."""

    def __init__(
        self, table_name: str, client: Any | None = None, stats: CallStats | None = None, *, salt: str = ""
    ) -> None:
        super().__init__(table_name, client, stats)
        self.salt = salt

    # -- the event path: one read, one write ---------------------------------------------------
    def load(
        self,
        tenant: str,
        *,
        identifiers: Sequence[Identifier],
        profile_ids: Iterable[str] = (),
        marker: tuple[str, str] | None = None,
        orders: Sequence[tuple[str, str]] = (),
        check_erased: Sequence[Identifier] | None = None,
        consistent: bool = True,
    ) -> Snapshot:
        """One BatchGetItem: claims, erased hashes, candidate profiles, marker, order markers.

        ``check_erased`` limits the erased-hash lookups (default, and the event path: every
        identifier, so the result never depends on a warm cache). ``consistent=False`` halves the
        read units: the event path's first attempt, whose every write is conditioned on what it
        read (a stale read loses the condition and the retry reads consistently).
        """
        keys: list[tuple[str, str]] = []
        by_claim = {claim_pk(tenant, i): i for i in identifiers}
        erasable = identifiers if check_erased is None else check_erased
        by_erased = {erased_pk(tenant, identifier_hash(self.salt, tenant, i)): i for i in erasable}
        keys += [(pk, CLAIM_SK) for pk in by_claim]
        keys += [(pk, ERASED_SK) for pk in by_erased]
        wanted = list(dict.fromkeys(profile_ids))
        keys += [(profile_pk(tenant, p), PROFILE_SK) for p in wanted]
        if marker:
            keys.append((marker_pk(tenant, *marker), MARKER_SK))
        keys += [order_key(tenant, oid, kind) for oid, kind in orders]
        snap = Snapshot(missing_profiles=set(wanted))
        for item in self.batch_get(keys, consistent=consistent):
            pk, sk = item["pk"], item["sk"]
            if sk == CLAIM_SK and pk in by_claim:
                snap.claims[by_claim[pk]] = item["profile_id"]
            elif sk == ERASED_SK and pk in by_erased:
                snap.erased[by_erased[pk]] = item["erased_at"]
            elif sk == PROFILE_SK:
                profile = Profile.from_dict(item)
                snap.profiles[profile.profile_id] = profile
                snap.missing_profiles.discard(profile.profile_id)
            elif sk == MARKER_SK:
                snap.marker = item
            else:
                snap.orders[(pk.rsplit("#ORDER#", 1)[1], sk)] = str(item.get("event_key") or "")
        return snap

    def load_erased(self, tenant: str, identifiers: Sequence[Identifier]) -> dict[Identifier, str]:
        by_erased = {erased_pk(tenant, identifier_hash(self.salt, tenant, i)): i for i in identifiers}
        if not by_erased:
            return {}
        items = self.batch_get([(pk, ERASED_SK) for pk in by_erased])
        return {by_erased[i["pk"]]: i["erased_at"] for i in items}

    def load_profiles(
        self, tenant: str, profile_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, Profile]:
        ids = list(dict.fromkeys(profile_ids))
        if not ids:
            return {}
        items = self.batch_get([(profile_pk(tenant, p), PROFILE_SK) for p in ids], consistent=consistent)
        return {i["profile_id"]: Profile.from_dict(i) for i in items}

    def load_view_parts(
        self, tenant: str, absorbed: Sequence[str], merge_log: Sequence[str]
    ) -> tuple[dict[str, Profile], list[dict[str, Any]]]:
        """The absorbed profiles and the merge records ``owner:merge id`` of a 360 view, in one
        BatchGetItem (eventually consistent, like the rest of the view)."""
        keys = [(profile_pk(tenant, p), PROFILE_SK) for p in absorbed]
        for entry in merge_log:
            owner, _, merge_id = entry.partition(":")
            keys.append((profile_pk(tenant, owner), f"{MERGE_PREFIX}{merge_id}"))
        profiles: dict[str, Profile] = {}
        records: list[dict[str, Any]] = []
        for item in self.batch_get(keys, consistent=False) if keys else []:
            if item["sk"] == PROFILE_SK:
                profiles[item["profile_id"]] = Profile.from_dict(item)
            else:
                records.append(item)
        return profiles, records

    def commit(self, tenant: str, writes: WriteSet) -> None:
        """All of ``writes`` in one TransactWriteItems; ConditionFailed if any race was lost."""
        ops: list[dict[str, Any]] = []
        for profile, expected in writes.profiles:
            item = {"pk": profile_pk(tenant, profile.profile_id), "sk": PROFILE_SK, **profile.to_item()}
            if not profile.merged_into:
                item["gsi2pk"] = profile_index_pk(tenant, profile_shard(profile.profile_id))
                item["gsi2sk"] = profile.profile_id
            ops.append(_conditional_put(item, "version", expected))
        for ident, owner, expected_owner in writes.claims:
            item = {
                "pk": claim_pk(tenant, ident),
                "sk": CLAIM_SK,
                "profile_id": owner,
                "type": ident.type,
                "value": ident.value,
            }
            ops.append(_conditional_put(item, "profile_id", expected_owner))
        after = writes.timeline if writes.timeline_after or writes.plain() else None
        if writes.timeline is not None and after is None:
            # the event's timeline item is its processed marker: absent, or the event was applied
            ops.append({"Put": {"item": writes.timeline, **_ABSENT}})
        for order_id, kind, profile_id, event_key in writes.orders:
            item = order_item(tenant, order_id, kind, profile_id, event_key)
            ops.append({"Put": {"item": item, **_ABSENT}})
        for record in writes.merges:
            ops.append({"Put": {"item": record, **_ABSENT}})
        for _pk, _sk, item in writes.merge_updates:
            ops.append({"Put": {"item": item}})
        if len(ops) > TRANSACTION_LIMIT:
            raise ValueError(f"{len(ops)} writes exceed one transaction")
        if len(ops) == 1 and "expect" not in ops[0]["Put"]:
            self.put(ops[0]["Put"]["item"])
        elif len(ops) == 1:
            # A known person: no claim, merge or order marker to keep in step with the profile. The
            # profile is the commit point (conditional on its version, and it records the event in
            # its applied-event ring); the timeline item, which is also the processed marker, has a
            # deterministic key and follows: two plain puts, half the units of a transaction.
            only = ops[0]["Put"]
            self.put(only["item"], condition=only["condition"], values=only.get("values"))
        else:
            self.transact(ops)
        if after is not None:
            self.write_timeline(after)

    def claim_order(self, tenant: str, order_id: str, kind: str, profile_id: str, event_key: str) -> str:
        """Claim an order for the event ``event_key`` before its profile write (the known-person
        path): a put conditioned on absence, no read. Returns the key of the event that holds the
        claim — ``event_key`` if this put won or an earlier attempt of the same event did."""
        item = order_item(tenant, order_id, kind, profile_id, event_key)
        try:
            resp = self.client.put_item(
                TableName=self.table_name,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ReturnConsumedCapacity="TOTAL",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self.stats.record("PutItem", "write")
            held_item: Any = exc.response.get("Item") or {}
            held = deserialize(held_item)
            return str(held.get("event_key") or "")
        self.stats.record("PutItem", "write", resp)
        return event_key

    def write_timeline(self, item: Mapping[str, Any]) -> None:
        """An event's timeline item (with its out-events: the processed marker), after its profile
        write; idempotent (deterministic key)."""
        self.put(item)

    def find_applied(
        self,
        tenant: str,
        *,
        connector: str,
        message_id: str,
        sk: str,
        profile_ids: Iterable[str],
        consistent: bool = False,
    ) -> dict[str, Any] | None:
        """Where an event was applied, if it was: its timeline item under one of ``profile_ids``
        (the profiles it can have landed on: the person's, the ones it absorbed, the ones an admin
        unmerged from it), or its processed marker from before the timeline item carried the
        out-events — one BatchGetItem. The item returned has ``profile_id`` and ``out``."""
        legacy = (marker_pk(tenant, connector, message_id), MARKER_SK)
        keys = [(profile_pk(tenant, p), sk) for p in dict.fromkeys(profile_ids)] + [legacy]
        found = self.batch_get(keys, consistent=consistent)
        ranked = sorted(found, key=lambda i: ("out" not in i, i["sk"] != MARKER_SK))
        return ranked[0] if ranked else None

    def profile_ids_page(
        self, tenant: str, shard: int, *, after: str | None = None, limit: int = 100
    ) -> tuple[list[str], str | None]:
        """One page of a tenant's live profile ids in one index shard, and the last id if more remain."""
        page = self.query(
            profile_index_pk(tenant, shard),
            index=PROFILE_INDEX,
            pk_name="gsi2pk",
            sk_name="gsi2sk",
            limit=limit,
            start_key=(
                {
                    "pk": profile_pk(tenant, after),
                    "sk": PROFILE_SK,
                    "gsi2pk": profile_index_pk(tenant, shard),
                    "gsi2sk": after,
                }
                if after
                else None
            ),
        )
        ids = [str(i["gsi2sk"]) for i in page.items]
        return ids, (ids[-1] if page.next_key and ids else None)

    # -- reads for the admin side --------------------------------------------------------------
    def claim_owner(self, tenant: str, ident: Identifier) -> str | None:
        item = self.get(claim_pk(tenant, ident), CLAIM_SK)
        return item["profile_id"] if item else None

    def get_profile(self, tenant: str, profile_id: str) -> Profile | None:
        item = self.get(profile_pk(tenant, profile_id), PROFILE_SK)
        return Profile.from_dict(item) if item else None

    def timeline(
        self, tenant: str, profile_id: str, *, before: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Newest first, strictly older than the ``before`` sort key when given."""
        pk = profile_pk(tenant, profile_id)
        if before:
            if not valid_cursor(before):
                raise ValueError("a timeline cursor starts with TL#")
            page = self.query(pk, sk_between=(TIMELINE_PREFIX, before), forward=False, limit=limit + 1)
            return [i for i in page.items if i["sk"] != before][:limit]
        return self.query(pk, sk_prefix=TIMELINE_PREFIX, forward=False, limit=limit).items

    def timeline_all(self, tenant: str, profile_id: str) -> Iterator[dict[str, Any]]:
        return self.query_all(profile_pk(tenant, profile_id), sk_prefix=TIMELINE_PREFIX)

    def merge_records(self, tenant: str, survivor_id: str) -> list[dict[str, Any]]:
        return list(self.query_all(profile_pk(tenant, survivor_id), sk_prefix=MERGE_PREFIX, consistent=True))

    def merges_of(self, tenant: str, absorbed_id: str) -> list[dict[str, Any]]:
        """Every merge record (on any survivor) that absorbed ``absorbed_id``."""
        return list(
            self.query_all(merge_of_pk(tenant, absorbed_id), index="gsi1", pk_name="gsi1pk", sk_name="gsi1sk")
        )

    def erased_at(self, tenant: str, ident: Identifier) -> str | None:
        item = self.get(erased_pk(tenant, identifier_hash(self.salt, tenant, ident)), ERASED_SK)
        return item["erased_at"] if item else None

    # -- erase -----------------------------------------------------------------------------------
    def erase(
        self,
        tenant: str,
        *,
        profile_ids: Sequence[str],
        identifiers: Sequence[Identifier],
        extra_keys: Sequence[tuple[str, str]],
        erased_at: str,
        rewrites: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """Delete everything under the profiles plus ``extra_keys``; remember hashed identifiers;
        put ``rewrites`` (items of other people scrubbed of the erased person's data)."""
        deletes: list[tuple[str, str]] = []
        for pid in profile_ids:
            deletes += [(i["pk"], i["sk"]) for i in self.query_all(profile_pk(tenant, pid), consistent=True)]
        deletes += [(claim_pk(tenant, i), CLAIM_SK) for i in identifiers]
        deletes += list(extra_keys)
        puts = [
            {
                "pk": erased_pk(tenant, identifier_hash(self.salt, tenant, i)),
                "sk": ERASED_SK,
                "erased_at": erased_at,
                "type": i.type,
            }
            for i in identifiers
        ]
        rewritten = {(r["pk"], r["sk"]) for r in rewrites}
        puts += [dict(r) for r in rewrites]
        self.batch_write(puts, [k for k in dict.fromkeys(deletes) if k not in rewritten])
        return len(deletes)


class MemoryIdentityRepository(IdentityRepository):
    """An in-memory fake of the DynamoDB primitives (benchmarks, fast unit tests).

    The domain methods above are inherited unchanged; only get/batch_get/query/put/transact/
    batch_write/delete are replaced, evaluating the structured ``expect`` conditions.
    """

    def __init__(self, *, salt: str = "", stats: CallStats | None = None, copy_items: bool = True) -> None:
        super().__init__("memory", client=object(), stats=stats, salt=salt)
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        # Benchmarks skip the defensive copies: the service never mutates what it reads or wrote.
        self._clone = _clone if copy_items else _same

    @staticmethod
    def _check(current: dict[str, Any] | None, expect: tuple[Any, ...] | None) -> bool:
        if expect is None:
            return True
        if expect[0] == "absent":
            return current is None
        return current is not None and current.get(expect[1]) == expect[2]

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        self.stats.record("GetItem", "read")
        found = self.items.get((pk, sk))
        return self._clone(found) if found else None

    def batch_get(self, keys: list[tuple[str, str]], *, consistent: bool = True) -> list[dict[str, Any]]:
        unique = list(dict.fromkeys(keys))
        for _ in range(0, max(len(unique), 1), 100):
            self.stats.record("BatchGetItem", "read")
        return [self._clone(self.items[k]) for k in unique if k in self.items]

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
        self.stats.record("Query", "read")
        rows = [i for i in self.items.values() if i.get(pk_name) == pk and sk_name in i]
        if sk_prefix is not None:
            rows = [i for i in rows if i[sk_name].startswith(sk_prefix)]
        if sk_between is not None:
            rows = [i for i in rows if sk_between[0] <= i[sk_name] <= sk_between[1]]
        rows.sort(key=lambda i: i[sk_name], reverse=not forward)
        if start_key:
            marker = start_key[sk_name]
            rows = [i for i in rows if (i[sk_name] > marker if forward else i[sk_name] < marker)]
        more = None
        if limit and len(rows) > limit:
            rows = rows[:limit]
            more = {"pk": rows[-1]["pk"], "sk": rows[-1]["sk"], sk_name: rows[-1][sk_name]}
        return Page([self._clone(i) for i in rows], more)

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self.stats.record("PutItem", "write")
        with self._lock:
            key = (item["pk"], item["sk"])
            if condition == "attribute_not_exists(pk)" and key in self.items:
                raise ConditionFailed("exists")
            if condition == "version = :expected":
                current = self.items.get(key)
                if current is None or current.get("version") != (values or {}).get(":expected"):
                    raise ConditionFailed("version moved")
            self.items[key] = self._clone(dict(item))

    def claim_order(self, tenant: str, order_id: str, kind: str, profile_id: str, event_key: str) -> str:
        self.stats.record("PutItem", "write")
        item = order_item(tenant, order_id, kind, profile_id, event_key)
        with self._lock:
            held = self.items.setdefault((item["pk"], item["sk"]), item)
        return str(held.get("event_key") or "")

    def delete(self, pk: str, sk: str, *, condition: str | None = None) -> None:
        self.stats.record("DeleteItem", "write")
        with self._lock:
            self.items.pop((pk, sk), None)

    def transact(self, operations: list[dict[str, Any]]) -> None:
        self.stats.record("TransactWriteItems", "write")
        with self._lock:
            for op in operations:
                ((_kind, spec),) = op.items()
                key = (spec["item"]["pk"], spec["item"]["sk"])
                if not self._check(self.items.get(key), spec.get("expect")):
                    raise ConditionFailed("transaction cancelled")
            for op in operations:
                ((_kind, spec),) = op.items()
                item = spec["item"]
                self.items[(item["pk"], item["sk"])] = self._clone(item)

    def batch_write(self, puts: Sequence[Mapping[str, Any]], deletes: Sequence[tuple[str, str]] = ()) -> None:
        self.stats.record("BatchWriteItem", "write")
        with self._lock:
            for item in puts:
                self.items[(item["pk"], item["sk"])] = self._clone(dict(item))
            for key in deletes:
                self.items.pop(key, None)


def _same(item: dict[str, Any]) -> dict[str, Any]:
    return item


def _clone(item: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy({k: v for k, v in item.items() if v is not None})
