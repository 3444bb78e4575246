"""SegmentsTable access: the only segments code that touches boto3 (plus an in-memory fake).

| pk | sk | item |
|---|---|---|
| `T#{t}#SEG` | `DEF#{segment}` | definition, version, created_at, updated_at |
| `T#{t}#SEG` | `MODELS` | the tenant's lifecycle thresholds and RFM breakpoints |
| `T#{t}#SEG` | `GEN` | generation: bumped by every change of definitions or models |
| `T#{t}#SEG` | `BACKFILL#{replay id}` | backfill progress: segment, status, profiles, entered |
| `T#{t}#SEG` | `RFMHIST#{shard}` | RFM histograms: {bucket: count} for recency day, orders, revenue |
| `T#{t}#P#{profile}` | `STATE` | the profile's state (engine.ProfileState); `due_shard`/`due_at`: a |
|  |  | change by time is due; `tenant_shard` (the per-tenant index) |
| `T#{t}#S#{segment}` | `M#{profile}` | a membership: segment_version, profile_version, entered_at |
| `T#{t}#S#{segment}` | `COUNT#{shard}` | member counter shard (`n`), so a count never scans |

The ``due`` GSI (``due_shard`` = ``DUE#{00..15}``, ``due_at`` = ISO time, keys only) is what the
sweep queries; it spans tenants, so one tick reads 16 partitions whatever the tenant count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from huiliu.errors import ConditionFailed
from huiliu.segments.engine import ProfileState
from huiliu.storage.dynamo import CallStats, DynamoRepository

DUE_SHARDS = 16
COUNTER_SHARDS = 4
HISTOGRAM_SHARDS = 8
STATE_SK = "STATE"
DUE_INDEX = "due"
TENANT_INDEX = "tenant"
TENANT_SHARDS = 8


def seg_pk(tenant: str) -> str:
    return f"T#{tenant}#SEG"


def state_pk(tenant: str, profile_id: str) -> str:
    return f"T#{tenant}#P#{profile_id}"


def members_pk(tenant: str, segment_id: str) -> str:
    return f"T#{tenant}#S#{segment_id}"


def _shard(text: str, shards: int) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16) % shards


def due_shard(tenant: str, profile_id: str) -> str:
    return f"DUE#{_shard(f'{tenant}#{profile_id}', DUE_SHARDS):02d}"


def counter_shard(profile_id: str) -> str:
    return f"COUNT#{_shard(profile_id, COUNTER_SHARDS)}"


def iso_of(posix: float) -> str:
    return datetime.fromtimestamp(posix, UTC).isoformat(timespec="microseconds")


@dataclass
class Commit:
    """Everything one evaluation writes: the state (conditional), memberships and counters."""

    state: ProfileState
    expected_wv: int | None  # the state's write counter when read (None: must not exist)
    entered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (segment, item attrs)
    exited: list[str] = field(default_factory=list)
    delete_state: bool = False


class SegmentsStore(Protocol):
    stats: CallStats

    def load_definitions(self, tenant: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]: ...
    def bump_generation(self, tenant: str) -> None: ...
    def put_definition(self, tenant: str, item: dict[str, Any], expected_version: int | None) -> None: ...
    def put_definitions(self, tenant: str, writes: Sequence[tuple[dict[str, Any], int | None]]) -> None: ...
    def delete_definition(self, tenant: str, segment_id: str) -> None: ...
    def put_models(self, tenant: str, models: dict[str, Any]) -> None: ...
    def get_states(self, tenant: str, profile_ids: Sequence[str]) -> dict[str, tuple[ProfileState, int]]: ...
    def commit(self, commit: Commit) -> None: ...
    def due_keys(self, shard: int, until_iso: str, limit: int) -> list[tuple[str, str]]: ...
    def count(self, tenant: str, segment_id: str) -> int: ...
    def members(
        self, tenant: str, segment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...
    def states_page(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ProfileState], str | None]: ...
    def put_progress(self, tenant: str, replay_id: str, attrs: dict[str, Any]) -> None: ...
    def add_histogram(self, tenant: str, profile_id: str, delta: dict[str, int]) -> None: ...
    def load_histogram(self, tenant: str) -> dict[str, int]: ...
    def add_progress(self, tenant: str, replay_id: str, evaluated: int, entered: int) -> None: ...
    def progress(self, tenant: str) -> list[dict[str, Any]]: ...


def _state_item(state: ProfileState, wv: int) -> dict[str, Any]:
    item = {"pk": state_pk(state.tenant_id, state.profile_id), "sk": STATE_SK, "wv": wv, **state.to_item()}
    # the per-tenant keys-only index (preview samples kept states without a scan); never changes
    item["tenant_shard"] = f"T#{state.tenant_id}#{_shard(state.profile_id, TENANT_SHARDS)}"
    item["tenant_sk"] = state.profile_id
    due = state.due
    if due is not None:
        item["due_shard"] = due_shard(state.tenant_id, state.profile_id)
        item["due_at"] = iso_of(due)
    return item


def _member_ops(commit: Commit) -> tuple[list[dict[str, Any]], dict[str, int]]:
    tenant, pid = commit.state.tenant_id, commit.state.profile_id
    puts = [
        {"pk": members_pk(tenant, sid), "sk": f"M#{pid}", "profile_id": pid, **attrs}
        for sid, attrs in commit.entered
    ]
    deltas: dict[str, int] = {}
    for sid, _ in commit.entered:
        deltas[sid] = deltas.get(sid, 0) + 1
    for sid in commit.exited:
        deltas[sid] = deltas.get(sid, 0) - 1
    return puts, deltas


class DynamoSegmentsStore(DynamoRepository):
    """The DynamoDB implementation (one BatchGetItem to read, one write call per change)."""

    def load_definitions(self, tenant: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        defs, models, generation = [], None, 0
        for item in self.query_all(seg_pk(tenant), sk_between=("DEF#", "MODELS"), consistent=True):
            if item["sk"].startswith("DEF#"):
                defs.append(item)
            elif item["sk"] == "GEN":
                generation = int(item.get("gen") or 0)
            elif item["sk"] == "MODELS":
                models = item.get("models")
        return defs, models, generation

    def bump_generation(self, tenant: str) -> None:
        self.update(seg_pk(tenant), "GEN", "ADD gen :one", values={":one": 1})

    def put_definition(self, tenant: str, item: dict[str, Any], expected_version: int | None) -> None:
        full = {"pk": seg_pk(tenant), "sk": f"DEF#{item['id']}", **item}
        if expected_version is None:
            self.put(full, condition="attribute_not_exists(pk)")
        else:
            self.put(full, condition="version = :v", values={":v": expected_version})

    def put_definitions(self, tenant: str, writes: Sequence[tuple[dict[str, Any], int | None]]) -> None:
        """All or nothing: one transaction (at most 100 definitions per apply)."""
        if len(writes) > 100:
            raise ValueError("at most 100 segments per apply")
        ops = []
        for item, expected in writes:
            full = {"pk": seg_pk(tenant), "sk": f"DEF#{item['id']}", **item}
            if expected is None:
                ops.append({"Put": {"item": full, "condition": "attribute_not_exists(pk)"}})
            else:
                ops.append({"Put": {"item": full, "condition": "version = :v", "values": {":v": expected}}})
        self.transact(ops)

    def delete_definition(self, tenant: str, segment_id: str) -> None:
        self.delete(seg_pk(tenant), f"DEF#{segment_id}")

    def put_models(self, tenant: str, models: dict[str, Any]) -> None:
        self.put({"pk": seg_pk(tenant), "sk": "MODELS", "models": models})

    def get_states(self, tenant: str, profile_ids: Sequence[str]) -> dict[str, tuple[ProfileState, int]]:
        items = self.batch_get([(state_pk(tenant, pid), STATE_SK) for pid in profile_ids])
        return {i["profile_id"]: (ProfileState.from_item(i), int(i.get("wv") or 0)) for i in items}

    def commit(self, commit: Commit) -> None:
        state = commit.state
        pk = state_pk(state.tenant_id, state.profile_id)
        wv = (commit.expected_wv or 0) + 1
        if commit.expected_wv is None:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "wv = :wv", {":wv": commit.expected_wv}
        puts, deltas = _member_ops(commit)
        if not puts and not commit.exited:
            if commit.delete_state:
                if commit.expected_wv is not None:
                    self.delete(pk, STATE_SK)
            else:
                self.put(_state_item(state, wv), condition=condition, values=values)
            return
        ops: list[dict[str, Any]] = []
        if commit.delete_state:
            if commit.expected_wv is not None:
                ops.append({"Delete": {"pk": pk, "sk": STATE_SK, "condition": condition, "values": values}})
        else:
            ops.append({"Put": {"item": _state_item(state, wv), "condition": condition, "values": values}})
        ops += [{"Put": {"item": p}} for p in puts]
        ops += [
            {"Delete": {"pk": members_pk(state.tenant_id, sid), "sk": f"M#{state.profile_id}"}}
            for sid in commit.exited
        ]
        shard = counter_shard(state.profile_id)
        for sid, delta in sorted(deltas.items()):
            if delta:
                ops.append(
                    {
                        "Update": {
                            "pk": members_pk(state.tenant_id, sid),
                            "sk": shard,
                            "expression": "ADD n :d",
                            "values": {":d": delta},
                        }
                    }
                )
        # A transaction holds 100 items: the state goes with the first chunk (its condition guards
        # the whole evaluation); the rare remainder follows (see docs/segments.md).
        for start in range(0, len(ops), 100):
            self.transact(ops[start : start + 100])

    def due_keys(self, shard: int, until_iso: str, limit: int) -> list[tuple[str, str]]:
        page = self.query(
            f"DUE#{shard:02d}",
            index=DUE_INDEX,
            pk_name="due_shard",
            sk_name="due_at",
            sk_between=("0", until_iso),
            limit=limit,
        )
        out = []
        for item in page.items:
            _, tenant, _, pid = item["pk"].split("#", 3)
            out.append((tenant, pid))
        return out

    def count(self, tenant: str, segment_id: str) -> int:
        keys = [(members_pk(tenant, segment_id), f"COUNT#{i}") for i in range(COUNTER_SHARDS)]
        return sum(int(i.get("n") or 0) for i in self.batch_get(keys, consistent=False))

    def members(
        self, tenant: str, segment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        start = {"pk": members_pk(tenant, segment_id), "sk": f"M#{cursor}"} if cursor else None
        page = self.query(members_pk(tenant, segment_id), sk_prefix="M#", limit=limit, start_key=start)
        items = [{k: v for k, v in i.items() if k not in ("pk", "sk")} for i in page.items]
        next_cursor = page.next_key["sk"].removeprefix("M#") if page.next_key else None
        return items, next_cursor

    def states_page(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ProfileState], str | None]:
        """A page of the tenant's kept states through the keys-only tenant index, shard by shard."""
        shard, after = 0, None
        if cursor:
            head, _, tail = cursor.partition(":")
            shard, after = int(head), tail or None
        keys: list[str] = []
        next_cursor: str | None = None
        while shard < TENANT_SHARDS and len(keys) < limit:
            start = None
            if after:
                start = {
                    "tenant_shard": f"T#{tenant}#{shard}",
                    "tenant_sk": after,
                    "pk": state_pk(tenant, after),
                    "sk": STATE_SK,
                }
            page = self.query(
                f"T#{tenant}#{shard}",
                index=TENANT_INDEX,
                pk_name="tenant_shard",
                sk_name="tenant_sk",
                limit=limit - len(keys),
                start_key=start,
            )
            keys += [i["tenant_sk"] for i in page.items]
            if page.next_key:
                next_cursor = f"{shard}:{page.next_key['tenant_sk']}"
                break
            shard, after = shard + 1, None
            next_cursor = f"{shard}:" if shard < TENANT_SHARDS else None
        states = self.get_states(tenant, keys) if keys else {}
        return [states[k][0] for k in keys if k in states], next_cursor

    def put_progress(self, tenant: str, replay_id: str, attrs: dict[str, Any]) -> None:
        names = {f"#a{i}": k for i, k in enumerate(attrs)}
        values = {f":a{i}": v for i, v in enumerate(attrs.values())}
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attrs)))
        self.update(seg_pk(tenant), f"BACKFILL#{replay_id}", expression, names=names, values=values)

    def add_progress(self, tenant: str, replay_id: str, evaluated: int, entered: int) -> None:
        self.update(
            seg_pk(tenant),
            f"BACKFILL#{replay_id}",
            "ADD evaluated :e, entered :n",
            values={":e": evaluated, ":n": entered},
        )

    def progress(self, tenant: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in i.items() if k not in ("pk", "sk")}
            for i in self.query_all(seg_pk(tenant), sk_prefix="BACKFILL#")
        ]

    def add_histogram(self, tenant: str, profile_id: str, delta: dict[str, int]) -> None:
        """One UpdateItem moving a profile between histogram cells (approximate by design: a lost
        update shifts a quantile by one profile)."""
        names = {f"#h{i}": k for i, k in enumerate(delta)}
        values = {f":h{i}": v for i, v in enumerate(delta.values())}
        expression = "ADD " + ", ".join(f"#h{i} :h{i}" for i in range(len(delta)))
        self.update(seg_pk(tenant), histogram_sk(profile_id), expression, names=names, values=values)

    def load_histogram(self, tenant: str) -> dict[str, int]:
        keys = [(seg_pk(tenant), f"RFMHIST#{i}") for i in range(HISTOGRAM_SHARDS)]
        total: dict[str, int] = {}
        for item in self.batch_get(keys, consistent=False):
            for name, value in item.items():
                if name[:2] in ("f_", "m_", "r_"):
                    total[name] = total.get(name, 0) + int(value)
        return total


def histogram_sk(profile_id: str) -> str:
    return f"RFMHIST#{_shard(profile_id, HISTOGRAM_SHARDS)}"


class MemorySegmentsStore:
    """In-memory SegmentsStore for unit tests, property tests and benchmarks (same semantics)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.stats = CallStats()

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.items.get((pk, sk))
        return _copy(item) if item is not None else None

    def load_definitions(self, tenant: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        self.stats.record("Query", "read")
        pk = seg_pk(tenant)
        defs = [_copy(v) for (p, s), v in sorted(self.items.items()) if p == pk and s.startswith("DEF#")]
        models = self.items.get((pk, "MODELS"))
        generation = int(self.items.get((pk, "GEN"), {}).get("gen", 0))
        return defs, _copy(models["models"]) if models else None, generation

    def bump_generation(self, tenant: str) -> None:
        self.stats.record("UpdateItem", "write")
        item = self.items.setdefault((seg_pk(tenant), "GEN"), {"gen": 0})
        item["gen"] += 1

    def put_definition(self, tenant: str, item: dict[str, Any], expected_version: int | None) -> None:
        key = (seg_pk(tenant), f"DEF#{item['id']}")
        held = self.items.get(key)
        if (expected_version is None and held is not None) or (
            expected_version is not None and (held is None or held.get("version") != expected_version)
        ):
            raise ConditionFailed("definition changed meanwhile")
        self.stats.record("PutItem", "write")
        self.items[key] = {"pk": key[0], "sk": key[1], **_copy(item)}

    def put_definitions(self, tenant: str, writes: Sequence[tuple[dict[str, Any], int | None]]) -> None:
        for item, expected in writes:
            held = self.items.get((seg_pk(tenant), f"DEF#{item['id']}"))
            if (expected is None) != (held is None) or (held is not None and held.get("version") != expected):
                raise ConditionFailed("definition changed meanwhile")
        for item, expected in writes:
            self.put_definition(tenant, item, expected)

    def delete_definition(self, tenant: str, segment_id: str) -> None:
        self.stats.record("DeleteItem", "write")
        self.items.pop((seg_pk(tenant), f"DEF#{segment_id}"), None)

    def put_models(self, tenant: str, models: dict[str, Any]) -> None:
        self.stats.record("PutItem", "write")
        self.items[(seg_pk(tenant), "MODELS")] = {"models": _copy(models)}

    def get_states(self, tenant: str, profile_ids: Sequence[str]) -> dict[str, tuple[ProfileState, int]]:
        self.stats.record("BatchGetItem", "read")
        out = {}
        for pid in profile_ids:
            item = self._get(state_pk(tenant, pid), STATE_SK)
            if item:
                out[pid] = (ProfileState.from_item(item), int(item.get("wv") or 0))
        return out

    def commit(self, commit: Commit) -> None:
        state = commit.state
        key = (state_pk(state.tenant_id, state.profile_id), STATE_SK)
        held = self.items.get(key)
        if (commit.expected_wv is None and held is not None) or (
            commit.expected_wv is not None and (held is None or held.get("wv") != commit.expected_wv)
        ):
            raise ConditionFailed("state changed meanwhile")
        puts, deltas = _member_ops(commit)
        self.stats.record("TransactWriteItems" if puts or commit.exited else "PutItem", "write")
        if commit.delete_state:
            self.items.pop(key, None)
        else:
            self.items[key] = _copy(_state_item(state, (commit.expected_wv or 0) + 1))
        for put in puts:
            self.items[(put["pk"], put["sk"])] = _copy(put)
        for sid in commit.exited:
            self.items.pop((members_pk(state.tenant_id, sid), f"M#{state.profile_id}"), None)
        shard = counter_shard(state.profile_id)
        for sid, delta in deltas.items():
            counter = self.items.setdefault((members_pk(state.tenant_id, sid), shard), {"n": 0})
            counter["n"] += delta

    def due_keys(self, shard: int, until_iso: str, limit: int) -> list[tuple[str, str]]:
        self.stats.record("Query", "read")
        name = f"DUE#{shard:02d}"
        due = sorted(
            (item["due_at"], item["tenant_id"], item["profile_id"])
            for item in self.items.values()
            if item.get("due_shard") == name and item["due_at"] <= until_iso
        )
        return [(t, p) for _, t, p in due[:limit]]

    def count(self, tenant: str, segment_id: str) -> int:
        self.stats.record("BatchGetItem", "read")
        pk = members_pk(tenant, segment_id)
        return sum(int(self.items.get((pk, f"COUNT#{i}"), {}).get("n", 0)) for i in range(COUNTER_SHARDS))

    def members(
        self, tenant: str, segment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.stats.record("Query", "read")
        pk = members_pk(tenant, segment_id)
        keys = sorted(
            s for (p, s) in self.items if p == pk and s.startswith("M#") and (not cursor or s > f"M#{cursor}")
        )
        page = keys[:limit]
        items = [{k: v for k, v in self.items[(pk, s)].items() if k not in ("pk", "sk")} for s in page]
        more = len(keys) > limit
        return items, (page[-1].removeprefix("M#") if more else None)

    def states_page(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ProfileState], str | None]:
        prefix = f"T#{tenant}#P#"
        pks = sorted(
            p
            for (p, s) in self.items
            if s == STATE_SK and p.startswith(prefix) and (not cursor or p > prefix + cursor)
        )
        page = pks[:limit]
        states = [ProfileState.from_item(self.items[(p, STATE_SK)]) for p in page]
        return states, (page[-1].removeprefix(prefix) if len(pks) > limit else None)

    def put_progress(self, tenant: str, replay_id: str, attrs: dict[str, Any]) -> None:
        self.items.setdefault((seg_pk(tenant), f"BACKFILL#{replay_id}"), {}).update(_copy(attrs))

    def add_progress(self, tenant: str, replay_id: str, evaluated: int, entered: int) -> None:
        item = self.items.setdefault((seg_pk(tenant), f"BACKFILL#{replay_id}"), {})
        item["evaluated"] = item.get("evaluated", 0) + evaluated
        item["entered"] = item.get("entered", 0) + entered

    def progress(self, tenant: str) -> list[dict[str, Any]]:
        pk = seg_pk(tenant)
        return [_copy(v) for (p, s), v in sorted(self.items.items()) if p == pk and s.startswith("BACKFILL#")]

    def add_histogram(self, tenant: str, profile_id: str, delta: dict[str, int]) -> None:
        self.stats.record("UpdateItem", "write")
        item = self.items.setdefault((seg_pk(tenant), histogram_sk(profile_id)), {})
        for name, value in delta.items():
            item[name] = item.get(name, 0) + value

    def load_histogram(self, tenant: str) -> dict[str, int]:
        self.stats.record("BatchGetItem", "read")
        total: dict[str, int] = {}
        for i in range(HISTOGRAM_SHARDS):
            for name, value in self.items.get((seg_pk(tenant), f"RFMHIST#{i}"), {}).items():
                total[name] = total.get(name, 0) + int(value)
        return total

    def states(self) -> Iterable[dict[str, Any]]:
        return [v for (_, s), v in self.items.items() if s == STATE_SK]


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value
