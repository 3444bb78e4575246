"""MessagesTable: the send log (claims and outcomes), contact projection, cap windows, suppression
list, due items (deferrals longer than SQS can delay) and the shared WeChat token.

Keys (tenant first, DESIGN §3):

====================================  ===============================  ===============================
pk                                    sk                               what
====================================  ===============================  ===============================
``T#{t}#P#{profile}``                 ``CONTACT``                      contact projection
``T#{t}#P#{profile}``                 ``MSG#{idempotency key}``        send log entry / claim
``T#{t}#P#{profile}``                 ``CAP#{channel}``                sends in the cap window
``T#{t}#SUP#{channel}#{hmac(addr)}``  ``SUP``                          suppression (address hashed)
``DUE#{yyyy-mm-ddThh}#{shard}``       ``{due iso}#{t}#{key}``          deferred request, due later
``DUE#CURSOR``                        ``CURSOR``                       last hour the tick finished
``WX#{app id}``                       ``TOKEN``                        WeChat access token + lease
====================================  ===============================  ===============================

The happy path of one send is three calls: ``load`` (BatchGetItem: contact, send log, cap),
``claim`` (TransactWriteItems: claim put + cap update + suppression ConditionCheck) and ``finish``
(UpdateItem: the outcome).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from huiliu.errors import ConditionFailed
from huiliu.notify.channels.wechat import Token
from huiliu.notify.models import PERSONAL_FIELDS, Contact, SendRecord, State
from huiliu.notify.policy import CapState
from huiliu.storage.dynamo import DynamoRepository, serialize, serialize_values

DUE_SHARDS = 4
LOG_RETENTION = timedelta(days=400)
# A claim, a retry or a deferral may be taken over once lease_until has passed.
CLAIMABLE = "attribute_not_exists(pk) OR (#s IN (:claimed, :retry, :deferred) AND lease_until <= :now)"
CLAIMABLE_VALUES = {
    ":claimed": State.CLAIMED.value,
    ":retry": State.RETRY.value,
    ":deferred": State.DEFERRED.value,
}


def profile_pk(tenant: str, profile_id: str) -> str:
    return f"T#{tenant}#P#{profile_id}"


def address_hash(salt: str, channel: str, address: str) -> str:
    return hmac.new(
        salt.encode(), f"{channel}:{address.strip().lower()}".encode(), hashlib.sha256
    ).hexdigest()


class ClaimResult(StrEnum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"  # another delivery holds or finished this key
    CAP_CHANGED = "cap_changed"  # the cap window moved under us: read it again and re-decide
    SUPPRESSED = "suppressed"  # the address is on the suppression list


@dataclass
class Loaded:
    contact: Contact | None
    record: SendRecord | None
    cap: CapState


class MessagesRepository(DynamoRepository):
    def __init__(self, table_name: str, *, salt: str, client: Any | None = None, stats: Any = None) -> None:
        super().__init__(table_name, client=client, stats=stats)
        self.salt = salt

    # ------------------------------------------------------------------ reads
    def load(self, tenant: str, profile_id: str, channel: str, key: str) -> Loaded:
        pk = profile_pk(tenant, profile_id)
        items = self.batch_get([(pk, "CONTACT"), (pk, f"MSG#{key}"), (pk, f"CAP#{channel}")])
        by_sk = {i["sk"]: i for i in items}
        return Loaded(
            contact=_contact(by_sk.get("CONTACT")),
            record=_record(by_sk.get(f"MSG#{key}")),
            cap=_cap(by_sk.get(f"CAP#{channel}")),
        )

    def contact(self, tenant: str, profile_id: str) -> Contact | None:
        return _contact(self.get(profile_pk(tenant, profile_id), "CONTACT"))

    def record(self, tenant: str, profile_id: str, key: str) -> SendRecord | None:
        return _record(self.get(profile_pk(tenant, profile_id), f"MSG#{key}"))

    def cap(self, tenant: str, profile_id: str, channel: str) -> CapState:
        return _cap(self.get(profile_pk(tenant, profile_id), f"CAP#{channel}"))

    def suppression(self, tenant: str, channel: str, address: str) -> dict[str, Any] | None:
        return self.get(self.suppression_pk(tenant, channel, address), "SUP")

    def suppression_pk(self, tenant: str, channel: str, address: str) -> str:
        return f"T#{tenant}#SUP#{channel}#{address_hash(self.salt, channel, address)}"

    # ------------------------------------------------------------------ the send log
    def claim(
        self,
        tenant: str,
        record: SendRecord,
        now: datetime,
        *,
        lease_seconds: int,
        cap: tuple[CapState, list[tuple[int, str]], int] | None,
        address: str | None,
    ) -> ClaimResult:
        """Take the key (and the cap slot) in one transaction, unless the address is suppressed."""
        pk = profile_pk(tenant, record.profile_id)
        stamp = int(now.timestamp())
        record = record.model_copy(
            update={
                "state": State.CLAIMED,
                "lease_until": stamp + lease_seconds,
                "updated_at": now.isoformat(),
            }
        )
        item = {"pk": pk, "sk": f"MSG#{record.idempotency_key}", **_record_item(record, now)}
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": serialize(item),
                    "ConditionExpression": CLAIMABLE,
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": serialize_values({**CLAIMABLE_VALUES, ":now": stamp}),
                }
            }
        ]
        if cap is not None:
            state, sends, window_seconds = cap
            ops.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize({"pk": pk, "sk": f"CAP#{record.channel}"}),
                        "UpdateExpression": "SET sends = :s, ver = :next, #ttl = :ttl",
                        "ConditionExpression": "attribute_not_exists(ver) OR ver = :ver",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": serialize_values(
                            {
                                ":s": [[t, k] for t, k in sends],
                                ":ver": state.version,
                                ":next": state.version + 1,
                                ":ttl": stamp + window_seconds + 86400,
                            }
                        ),
                    }
                }
            )
        if address:
            ops.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": serialize(
                            {"pk": self.suppression_pk(tenant, record.channel, address), "sk": "SUP"}
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            resp = self.client.transact_write_items(TransactItems=ops, ReturnConsumedCapacity="TOTAL")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if not codes:  # an emulator without reasons: find out which condition failed
                return self._why_cancelled(tenant, record, stamp, address)
            failed = {i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"}
            if address and len(ops) - 1 in failed:
                return ClaimResult.SUPPRESSED
            if 0 in failed:
                return ClaimResult.DUPLICATE
            if cap is not None and 1 in failed:
                return ClaimResult.CAP_CHANGED
            raise
        self.stats.record("TransactWriteItems", "write", resp)
        return ClaimResult.CLAIMED

    def _why_cancelled(self, tenant: str, record: SendRecord, stamp: int, address: str | None) -> ClaimResult:
        if address and self.suppression(tenant, record.channel, address):
            return ClaimResult.SUPPRESSED
        held = self.record(tenant, record.profile_id, record.idempotency_key)
        if held and not (
            held.state in (State.CLAIMED, State.RETRY, State.DEFERRED) and held.lease_until <= stamp
        ):
            return ClaimResult.DUPLICATE
        return ClaimResult.CAP_CHANGED

    def finish(self, tenant: str, record: SendRecord, now: datetime, **fields: Any) -> SendRecord:
        """Write the outcome of a claimed send (only while we still hold the claim)."""
        done = record.model_copy(update={**fields, "updated_at": now.isoformat()})
        names = {"#s": "state"}
        values: dict[str, Any] = {":claimed": State.CLAIMED.value, ":attempts": record.attempts}
        sets = []
        for i, (name, value) in enumerate(_record_item(done, now).items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        self.update(
            profile_pk(tenant, record.profile_id),
            f"MSG#{record.idempotency_key}",
            "SET " + ", ".join(sets),
            condition="#s = :claimed AND attempts = :attempts",
            names=names,
            values=values,
        )
        return done

    def put_outcome(self, tenant: str, record: SendRecord, now: datetime) -> bool:
        """Record an outcome reached without a claim (suppressed, deferred, dropped); False if the key
        was taken meanwhile."""
        item = {"pk": profile_pk(tenant, record.profile_id), "sk": f"MSG#{record.idempotency_key}"}
        item.update(_record_item(record.model_copy(update={"updated_at": now.isoformat()}), now))
        try:
            self.put(
                item,
                condition=CLAIMABLE,
                names={"#s": "state"},
                values={**CLAIMABLE_VALUES, ":now": int(now.timestamp())},
            )
        except ConditionFailed:
            return False
        return True

    def mark_feedback(
        self, tenant: str, profile_id: str, key: str, kind: str, token: str
    ) -> SendRecord | None:
        """Note provider feedback ``kind`` (Delivery, Open, ...) on a send's log entry, once.

        One conditional UpdateItem: the first event of a kind stores its ``token`` (the provider
        event's id) and returns the send record; the same event again (a redelivery of our own
        attempt) returns it again; another event of the same kind (a second open) or a send not in
        the log returns None.
        """
        try:
            new = self.update(
                profile_pk(tenant, profile_id),
                f"MSG#{key}",
                "SET #fb = :token",
                condition="attribute_exists(pk) AND (attribute_not_exists(#fb) OR #fb = :token)",
                names={"#fb": f"fb_{kind.lower()}"},
                values={":token": token},
                return_values="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return _record(new)

    # ------------------------------------------------------------------ suppression, consent
    def suppress(self, tenant: str, channel: str, address: str, reason: str, at: str) -> None:
        self.put(
            {"pk": self.suppression_pk(tenant, channel, address), "sk": "SUP", "reason": reason, "at": at}
        )

    def unsuppress(self, tenant: str, channel: str, address: str) -> None:
        self.delete(self.suppression_pk(tenant, channel, address), "SUP")

    def set_optout(self, tenant: str, profile_id: str, channel: str, at: str) -> None:
        self.update(
            profile_pk(tenant, profile_id),
            "CONTACT",
            "SET optout = if_not_exists(optout, :empty)",
            values={":empty": {}},
        )
        self.update(
            profile_pk(tenant, profile_id),
            "CONTACT",
            "SET optout.#c = :at",
            names={"#c": channel},
            values={":at": at},
        )

    # ------------------------------------------------------------------ contact projection
    def upsert_contact(self, tenant: str, contact: Contact) -> bool:
        """Keep the newest snapshot (by version); ``optout`` is never overwritten by a snapshot."""
        data = contact.model_dump(mode="json", exclude={"optout", "merged_into"})
        names: dict[str, str] = {"#v": "version"}
        values: dict[str, Any] = {":ver": contact.version}
        sets: list[str] = []
        removes = ["merged_into"]
        for i, (name, value) in enumerate(data.items()):
            names[f"#a{i}"] = name
            if value is None:
                removes.append(f"#a{i}")
            else:
                values[f":a{i}"] = value
                sets.append(f"#a{i} = :a{i}")
        try:
            self.update(
                profile_pk(tenant, contact.profile_id),
                "CONTACT",
                "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                condition="attribute_not_exists(#v) OR #v < :ver",
                names=names,
                values=values,
            )
        except ConditionFailed:
            return False
        return True

    def mark_merged(self, tenant: str, absorbed: str, survivor: str) -> None:
        """The absorbed profile's requests go to the survivor's contact from now on."""
        self.update(
            profile_pk(tenant, absorbed),
            "CONTACT",
            "SET merged_into = :s, profile_id = if_not_exists(profile_id, :a)",
            values={":s": survivor, ":a": absorbed},
        )

    def erase(self, tenant: str, profile_id: str) -> int:
        """Delete the contact and cap windows; strip the send log's personal fields. Returns items touched."""
        pk = profile_pk(tenant, profile_id)
        touched = 0
        deletes: list[tuple[str, str]] = []
        for item in self.query_all(pk, consistent=True):
            touched += 1
            if item["sk"].startswith("MSG#"):
                self.update(
                    pk,
                    item["sk"],
                    "SET erased = :t REMOVE " + ", ".join(f"#p{i}" for i in range(len(PERSONAL_FIELDS))),
                    names={f"#p{i}": name for i, name in enumerate(PERSONAL_FIELDS)},
                    values={":t": True},
                )
            else:
                deletes.append((pk, item["sk"]))
        if deletes:
            self.batch_write([], deletes)
        return touched

    # ------------------------------------------------------------------ due items
    def put_due(self, tenant: str, key: str, due: datetime, channel: str, body: dict[str, Any]) -> None:
        hour = due.astimezone(UTC).strftime("%Y-%m-%dT%H")
        shard = int(hashlib.sha256(key.encode()).hexdigest(), 16) % DUE_SHARDS
        self.put(
            {
                "pk": f"DUE#{hour}#{shard}",
                "sk": f"{due.astimezone(UTC).isoformat()}#{tenant}#{key}",
                "channel": channel,
                "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                "ttl": int(due.timestamp()) + 14 * 86400,
            }
        )

    def due_cursor(self) -> str | None:
        item = self.get("DUE#CURSOR", "CURSOR")
        return item["hour"] if item else None

    def set_due_cursor(self, hour: str) -> None:
        self.put({"pk": "DUE#CURSOR", "sk": "CURSOR", "hour": hour})

    def due_in_hour(self, hour: str, upto: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        hi = upto.astimezone(UTC).isoformat() + "~"
        for shard in range(DUE_SHARDS):
            out.extend(self.query_all(f"DUE#{hour}#{shard}", sk_between=("0", hi), consistent=True))
        return out

    def delete_due(self, items: list[dict[str, Any]]) -> None:
        if items:
            self.batch_write([], [(i["pk"], i["sk"]) for i in items])


class DynamoTokenStore(DynamoRepository):
    """The WeChat access token shared by every invocation (see channels/wechat.py)."""

    def read(self, app_id: str) -> Token | None:
        item = self.get(f"WX#{app_id}", "TOKEN")
        if not item or "token" not in item:
            return None
        return Token(item["token"], float(item.get("expires_at", 0)))

    def try_lease(self, app_id: str, now: float, seconds: float, stale_before: float) -> bool:
        try:
            self.update(
                f"WX#{app_id}",
                "TOKEN",
                "SET lease_until = :until",
                condition="(attribute_not_exists(lease_until) OR lease_until < :now)"
                " AND (attribute_not_exists(expires_at) OR expires_at <= :stale)",
                values={":until": int(now + seconds), ":now": int(now), ":stale": int(stale_before)},
            )
        except ConditionFailed:
            return False
        return True

    def save(self, app_id: str, token: Token) -> None:
        self.put(
            {
                "pk": f"WX#{app_id}",
                "sk": "TOKEN",
                "token": token.value,
                "expires_at": int(token.expires_at),
                "lease_until": 0,
            }
        )

    def mark_stale(self, app_id: str, value: str) -> None:
        with contextlib.suppress(ConditionFailed):  # already replaced by a fresh token
            self.update(
                f"WX#{app_id}",
                "TOKEN",
                "SET expires_at = :zero",
                condition="#t = :v",
                names={"#t": "token"},
                values={":zero": 0, ":v": value},
            )


def _record_item(record: SendRecord, now: datetime) -> dict[str, Any]:
    data = record.model_dump(mode="json", exclude_none=True)
    data["ttl"] = int((now + LOG_RETENTION).timestamp())
    return data


def _contact(item: dict[str, Any] | None) -> Contact | None:
    if not item:
        return None
    return Contact.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})


def _record(item: dict[str, Any] | None) -> SendRecord | None:
    if not item:
        return None
    return SendRecord.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk", "ttl")})


def _cap(item: dict[str, Any] | None) -> CapState:
    if not item:
        return CapState()
    return CapState(
        sends=[(int(t), str(k)) for t, k in item.get("sends", [])], version=int(item.get("ver", 0))
    )
