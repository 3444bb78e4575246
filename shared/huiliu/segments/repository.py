"""SegmentsTable access: the only segments code that touches boto3 (plus an in-memory fake).

| pk | sk | item |
|---|---|---|
| `T#{t}#SEG` | `DEF#{segment}` | definition, version, created_at, updated_at |
| `T#{t}#SEG` | `MODELS` | the tenant's lifecycle thresholds and RFM breakpoints |
| `T#{t}#SEG` | `GEN` | generation: bumped by every change of definitions or models |
| `T#{t}#SEG` | `BACKFILL#{replay id}` | backfill progress: segment, status, profiles, entered |
| `T#{t}#P#{profile}` | `STATE` | the profile's state (engine.ProfileState) with ALL its memberships; |
|  |  | `due_shard`/`due_at`: a change by time is due; `tenant_shard`/`tenant_sk` |

One item per profile holds everything the stage decides on, so a profile event costs one
conditional write at most (``wv``, the state's write counter) and never a transaction. Two global
secondary indexes, both maintained by DynamoDB atomically with that write:

- ``due`` (``due_shard`` = ``DUE#{00..15}``, ``due_at`` = ISO time, keys only): what the sweep
  queries; it spans tenants, so one tick reads 16 partitions whatever the tenant count.
- ``tenant_members`` (``tenant_shard`` = ``T#{t}#{0..7}``, ``tenant_sk`` = profile id; projects
  ``members`` and ``since`` only): member lists, exports and counts read it (no table scan, a few
  hundred bytes per profile of the tenant); preview and the daily RFM recomputation page the kept
  states through it. Its entry is rewritten only when a membership changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from huiliu.errors import ConditionFailed
from huiliu.segments.engine import ProfileState
from huiliu.storage.dynamo import CallStats, DynamoRepository, serialize

DUE_SHARDS = 16
STATE_SK = "STATE"
DUE_INDEX = "due"
TENANT_INDEX = "tenant_members"
TENANT_SHARDS = 8
# what the tenant index carries besides its keys (template.yaml: NonKeyAttributes)
TENANT_INDEX_ATTRIBUTES = ("members", "since")


def seg_pk(tenant: str) -> str:
    return f"T#{tenant}#SEG"


def state_pk(tenant: str, profile_id: str) -> str:
    return f"T#{tenant}#P#{profile_id}"


def _shard(text: str, shards: int) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16) % shards


def due_shard(tenant: str, profile_id: str) -> str:
    return f"DUE#{_shard(f'{tenant}#{profile_id}', DUE_SHARDS):02d}"


def tenant_shard(tenant: str, profile_id: str) -> str:
    return f"T#{tenant}#{_shard(profile_id, TENANT_SHARDS)}"


def iso_of(posix: float) -> str:
    return datetime.fromtimestamp(posix, UTC).isoformat(timespec="microseconds")


@dataclass
class Commit:
    """What one evaluation writes: the profile's state, conditional on its write counter."""

    state: ProfileState
    expected_wv: int | None  # the state's write counter when read (None: must not exist)
    delete_state: bool = False


def member_row(profile_id: str, segment_id: str, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """One member of a segment as listed/exported, from a tenant-index entry (None: not a member)."""
    members = entry.get("members") or {}
    if segment_id not in members:
        return None
    since = (entry.get("since") or {}).get(segment_id)
    at, backfill = (since[0], bool(since[1])) if isinstance(since, list) else (since, False)
    return {
        "profile_id": profile_id,
        "segment_version": int(members[segment_id]),
        "entered_at": iso_of(int(at)) if at is not None else None,
        "backfill": backfill,
    }


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
    def counts(self, tenant: str) -> dict[str, int]: ...
    def members(
        self, tenant: str, segment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...
    def states_page(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ProfileState], str | None]: ...
    def put_progress(self, tenant: str, replay_id: str, attrs: dict[str, Any]) -> None: ...
    def add_progress(self, tenant: str, replay_id: str, evaluated: int, entered: int) -> None: ...
    def progress(self, tenant: str) -> list[dict[str, Any]]: ...


def _state_item(state: ProfileState, wv: int) -> dict[str, Any]:
    item = {"pk": state_pk(state.tenant_id, state.profile_id), "sk": STATE_SK, "wv": wv}
    # empty and null attributes are left out: an item's size (its name bytes too) is what a write costs
    item.update({k: v for k, v in state.to_item().items() if v not in (None, {}, [])})
    # the per-tenant index (members, counts, preview's sample, RFM); its keys never change
    item["tenant_shard"] = tenant_shard(state.tenant_id, state.profile_id)
    item["tenant_sk"] = state.profile_id
    due = state.due
    if due is not None:
        item["due_shard"] = due_shard(state.tenant_id, state.profile_id)
        item["due_at"] = iso_of(due)
    return item


def _member_page(
    entries: Iterable[tuple[int, str, Mapping[str, Any]]], segment_id: str, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` members from index entries ``(shard, profile id, entry)`` in index order; the
    cursor names the last member returned (None: no more)."""
    out: list[dict[str, Any]] = []
    last_shard = 0
    for shard, pid, entry in entries:
        row = member_row(pid, segment_id, entry)
        if row is None:
            continue
        if len(out) == limit:  # one more exists: the next page starts after the last one returned
            return out, f"{last_shard}:{out[-1]['profile_id']}"
        out.append(row)
        last_shard = shard
    return out, None


def _profile_key(pk: str) -> tuple[str, str]:
    """(tenant, profile id) of a state's partition key ``T#{t}#P#{profile}``."""
    tenant, _, profile = pk.removeprefix("T#").rpartition("#P#")
    return tenant, profile


def _cursor(cursor: str | None) -> tuple[int, str | None]:
    if not cursor:
        return 0, None
    head, _, tail = cursor.partition(":")
    return int(head), tail or None


class _TenantIndexReads:
    """Counts and member pages read from the tenant index (``_tenant_entries``), for both stores."""

    def _tenant_entries(
        self, tenant: str, start_shard: int = 0, after: str | None = None
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        raise NotImplementedError

    def counts(self, tenant: str) -> dict[str, int]:
        """Members of every segment of the tenant, in one pass over its index: no scan, no counter to
        keep exact on every transition; ~200 bytes a profile, so ~25 read units per 1,000 profiles."""
        out: dict[str, int] = {}
        for _shard_no, _pid, entry in self._tenant_entries(tenant):
            for sid in entry.get("members") or {}:
                out[sid] = out.get(sid, 0) + 1
        return out

    def count(self, tenant: str, segment_id: str) -> int:
        return self.counts(tenant).get(segment_id, 0)

    def members(
        self, tenant: str, segment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        shard, after = _cursor(cursor)
        return _member_page(self._tenant_entries(tenant, shard, after), segment_id, limit)


class DynamoSegmentsStore(_TenantIndexReads, DynamoRepository):
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
        states = [(ProfileState.from_item(i), int(i.get("wv") or 0)) for i in items]
        return {state.profile_id: (state, wv) for state, wv in states}

    def commit(self, commit: Commit) -> None:
        """One conditional PutItem (or DeleteItem) of the state: the write counter guards the whole
        evaluation, and both indexes follow the item (no membership items, no counters)."""
        state = commit.state
        pk = state_pk(state.tenant_id, state.profile_id)
        if commit.expected_wv is None:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "wv = :wv", {":wv": commit.expected_wv}
        if commit.delete_state:
            if commit.expected_wv is not None:
                key = {"Key": serialize({"pk": pk, "sk": STATE_SK})}
                self._write(
                    "DeleteItem", self.client.delete_item, key | self._conditions(condition, None, values)
                )
            return
        self.put(_state_item(state, (commit.expected_wv or 0) + 1), condition=condition, values=values)

    def due_keys(self, shard: int, until_iso: str, limit: int) -> list[tuple[str, str]]:
        page = self.query(
            f"DUE#{shard:02d}",
            index=DUE_INDEX,
            pk_name="due_shard",
            sk_name="due_at",
            sk_between=("0", until_iso),
            limit=limit,
        )
        return [_profile_key(item["pk"]) for item in page.items]

    def _tenant_entries(
        self, tenant: str, start_shard: int = 0, after: str | None = None
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """Every entry of the tenant index from ``(start_shard, after)`` on, shard by shard."""
        for shard in range(start_shard, TENANT_SHARDS):
            start = None
            if after and shard == start_shard:
                start = {
                    "tenant_shard": f"T#{tenant}#{shard}",
                    "tenant_sk": after,
                    "pk": state_pk(tenant, after),
                    "sk": STATE_SK,
                }
            while True:
                page = self.query(
                    f"T#{tenant}#{shard}",
                    index=TENANT_INDEX,
                    pk_name="tenant_shard",
                    sk_name="tenant_sk",
                    start_key=start,
                )
                for item in page.items:
                    yield shard, item["tenant_sk"], item
                if not page.next_key:
                    break
                start = page.next_key

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
        # eventually consistent: a sample for preview and the RFM breakpoints (half the read units)
        items = self.batch_get([(state_pk(tenant, pid), STATE_SK) for pid in keys], consistent=False)
        states = {s.profile_id: (s, 0) for s in map(ProfileState.from_item, items)}
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


class MemorySegmentsStore(_TenantIndexReads):
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
        if commit.delete_state:
            self.stats.record("DeleteItem", "write")
            self.items.pop(key, None)
        else:
            self.stats.record("PutItem", "write")
            self.items[key] = _copy(_state_item(state, (commit.expected_wv or 0) + 1))

    def due_keys(self, shard: int, until_iso: str, limit: int) -> list[tuple[str, str]]:
        self.stats.record("Query", "read")
        name = f"DUE#{shard:02d}"
        due = sorted(
            (item["due_at"], item["pk"])
            for item in self.items.values()
            if item.get("due_shard") == name and item["due_at"] <= until_iso
        )
        return [_profile_key(pk) for _, pk in due[:limit]]

    def _tenant_entries(
        self, tenant: str, start_shard: int = 0, after: str | None = None
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        self.stats.record("Query", "read")
        entries = sorted(
            (int(item["tenant_shard"].rsplit("#", 1)[1]), item["tenant_sk"], item)
            for item in self.items.values()
            if item.get("tenant_shard", "").startswith(f"T#{tenant}#")
        )
        for shard, pid, item in entries:
            if shard < start_shard or (shard == start_shard and after and pid <= after):
                continue
            yield shard, pid, {k: _copy(item[k]) for k in TENANT_INDEX_ATTRIBUTES if k in item}

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

    def states(self) -> Iterable[dict[str, Any]]:
        return [v for (_, s), v in self.items.items() if s == STATE_SK]


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value
