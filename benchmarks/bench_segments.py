"""Segments benchmark: compiled evaluation rate next to rule-engine and json-logic-qubit on the same
rules and profiles; segments evaluated per profile.changed with 50 segments defined; DynamoDB calls
and capacity units per profile.changed and per swept profile.

    python -m benchmarks --only segments [--quick]
    python benchmarks/bench_segments.py --profiles 20000

Capacity units come from item sizes (moto reports 1.0 whatever the size): a read unit per 4 KB
(strongly consistent), a write unit per 1 KB, transactional writes twice, plus the keys-only GSI
writes when an item enters, moves in or leaves the due index (and once when the tenant index learns
a profile). The call shape is DynamoSegmentsStore's (one BatchGetItem; PutItem or TransactWriteItems),
checked on moto by tests/functions/test_segments_stage.py.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from huiliu.segments.builtin import epoch
from huiliu.segments.compiler import EvalContext, compile_condition
from huiliu.segments.engine import ProfileState
from huiliu.segments.repository import Commit, MemorySegmentsStore, _member_ops, _state_item

NOW = datetime(2026, 11, 27, tzinfo=UTC)
CITIES = ["上海", "北京", "杭州", "广州", "深圳", "成都"]


def _iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(timespec="microseconds")


def make_profiles(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        orders = rng.choice([0, 0, 1, 1, 2, 3, 5, 8])
        last = rng.uniform(0, 400)
        out.append(
            {
                "traits": {"city": rng.choice(CITIES), "plan": rng.choice(["free", "pro"])},
                "tags": rng.sample(["vip", "wholesale", "staff", "newsletter"], rng.randint(0, 2)),
                "consent": {"wechat": {"granted": rng.random() < 0.7}},
                "identifier_types": ["phone"] + (["wechat_openid"] if rng.random() < 0.5 else []),
                "computed": (
                    {
                        "order_count": orders,
                        "revenue_total": round(orders * rng.uniform(20, 300), 2),
                        "last_order_at": _iso(last),
                        "first_order_at": _iso(last + rng.uniform(0, 300)),
                    }
                    if orders
                    else {}
                ),
            }
        )
    return out


# The same rules in the three languages. Time is an epoch cutoff for the libraries (they have no
# durations); the compiled language gets `within: P30D` on the ISO timestamp identity produces.
CUTOFF = (NOW - timedelta(days=30)).timestamp()
RULES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    (
        "repeat_vip",
        {"all": [{"computed": "revenue_total", "gte": 300}, {"computed": "order_count", "gte": 2}]},
        "revenue_total >= 300 and order_count >= 2",
        {"and": [{">=": [{"var": "revenue_total"}, 300]}, {">=": [{"var": "order_count"}, 2]}]},
    ),
    (
        "city_vip",
        {"all": [{"trait": "city", "in": ["上海", "北京"]}, {"tag": "vip"}]},
        "city in ['上海', '北京'] and 'vip' in tags",
        {"and": [{"in": [{"var": "city"}, ["上海", "北京"]]}, {"in": ["vip", {"var": "tags"}]}]},
    ),
    (
        "one_time",
        {"computed": "order_count", "eq": 1},
        "order_count == 1",
        {"==": [{"var": "order_count"}, 1]},
    ),
    (
        "wechat_fan",
        {"all": [{"identifier": "wechat_openid"}, {"consent": "wechat"}]},
        "'wechat_openid' in identifier_types and wechat_granted == true",
        {
            "and": [
                {"in": ["wechat_openid", {"var": "identifier_types"}]},
                {"==": [{"var": "wechat_granted"}, True]},
            ]
        },
    ),
    (
        "recent_buyer",
        {"computed": "last_order_at", "within": "P30D"},
        f"last_order_ts > {CUTOFF}",
        {">": [{"var": "last_order_ts"}, CUTOFF]},
    ),
    (
        "four_clauses",
        {
            "all": [
                {"computed": "order_count", "gte": 1},
                {"trait": "plan", "eq": "pro"},
                {"computed": "revenue_total", "lt": 1000},
                {"not": {"tag": "staff"}},
            ]
        },
        "order_count >= 1 and plan == 'pro' and revenue_total < 1000 and not 'staff' in tags",
        {
            "and": [
                {">=": [{"var": "order_count"}, 1]},
                {"==": [{"var": "plan"}, "pro"]},
                {"<": [{"var": "revenue_total"}, 1000]},
                {"!": {"in": ["staff", {"var": "tags"}]}},
            ]
        },
    ),
]


def _flat(p: dict[str, Any]) -> dict[str, Any]:
    c = p["computed"]
    return {
        "revenue_total": c.get("revenue_total", 0),
        "order_count": c.get("order_count", 0),
        "city": p["traits"]["city"],
        "plan": p["traits"]["plan"],
        "tags": p["tags"],
        "identifier_types": p["identifier_types"],
        "wechat_granted": p["consent"]["wechat"]["granted"],
        "last_order_ts": epoch(c["last_order_at"]) if "last_order_at" in c else 0.0,
    }


def _rate(fn: Any, items: list[Any], min_seconds: float) -> tuple[float, int]:
    """Items per second (each item runs every rule of the mix)."""
    done, started = 0, time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed, done


def evaluation_rates(n_profiles: int, min_seconds: float) -> list[dict[str, Any]]:
    import json_logic
    import rule_engine

    profiles = make_profiles(n_profiles)
    now = NOW.timestamp()
    contexts = [
        EvalContext(
            now=now,
            traits=p["traits"],
            computed=p["computed"],
            tags=p["tags"],
            consent=p["consent"],
            identifier_types=p["identifier_types"],
        )
        for p in profiles
    ]
    flats = [_flat(p) for p in profiles]
    rows = []
    mixes = {"mix of 6 rules": RULES, "one 4-clause rule": [RULES[-1]]}
    for label, rules in mixes.items():
        compiled = [compile_condition(r[1]).test for r in rules]
        engines = [rule_engine.Rule(r[2]) for r in rules]
        logics = [r[3] for r in rules]
        # identical answers first: the comparison is only fair if they agree
        for i, (c, e, j) in enumerate(zip(compiled, engines, logics, strict=True)):
            a = [c(x) for x in contexts]
            b = [bool(e.matches(f)) for f in flats]
            d = [bool(json_logic.jsonLogic(j, f)) for f in flats]
            assert a == b == d, f"rule {rules[i][0]} disagrees across engines"

        def run_compiled(ctx: EvalContext, tests: list[Any] = compiled) -> int:
            return sum(1 for t in tests if t(ctx))

        def run_engine(flat: dict[str, Any], rules_: list[Any] = engines) -> int:
            return sum(1 for r in rules_ if r.matches(flat))

        def run_logic(flat: dict[str, Any], rules_: list[Any] = logics) -> int:
            return sum(1 for r in rules_ if json_logic.jsonLogic(r, flat))

        k = len(rules)
        ours, _ = _rate(run_compiled, contexts, min_seconds)
        small = flats[: max(200, n_profiles // 20)]
        engine_rate, _ = _rate(run_engine, small, min_seconds / 2)
        logic_rate, _ = _rate(run_logic, small, min_seconds / 2)
        best = max(engine_rate, logic_rate) * k
        for name, rate in (
            ("huiliu compiled", ours * k),
            ("rule-engine", engine_rate * k),
            ("json-logic-qubit", logic_rate * k),
        ):
            rows.append(
                {
                    "measure": f"evaluations/s, {label}",
                    "engine": name,
                    "value": round(rate),
                    "note": f"{rate / best:.1f}x the faster library" if name == "huiliu compiled" else "",
                }
            )
    return rows


# -- the stage: segments evaluated and DynamoDB cost per profile.changed ----------------------------
def _size(item: dict[str, Any]) -> int:
    """Approximate DynamoDB item size: attribute names + JSON-encoded values (UTF-8)."""
    return sum(len(k) + len(json.dumps(v, ensure_ascii=False, default=str).encode()) for k, v in item.items())


class MeteredStore(MemorySegmentsStore):
    """The in-memory store, metering calls and capacity units the way DynamoDB would bill them."""

    def __init__(self) -> None:
        super().__init__()
        self.rcu = 0.0
        self.wcu = 0.0
        self.calls = {"read": 0, "write": 0}

    def get_states(self, tenant: str, profile_ids: Any) -> dict[str, tuple[ProfileState, int]]:
        found = super().get_states(tenant, profile_ids)
        self.calls["read"] += 1
        sizes = [_size(_state_item(s, wv)) for s, wv in found.values()] or [1]
        self.rcu += sum(math.ceil(s / 4096) for s in sizes)
        return found

    def commit(self, commit: Commit) -> None:
        before = self.items.get((f"T#{commit.state.tenant_id}#P#{commit.state.profile_id}", "STATE"))
        super().commit(commit)
        self.calls["write"] += 1
        puts, deltas = _member_ops(commit)
        transactional = bool(puts or commit.exited)
        units = 0 if commit.delete_state else math.ceil(_size(_state_item(commit.state, 1)) / 1024)
        units += len(puts) + len(commit.exited) + sum(1 for d in deltas.values() if d)
        self.wcu += units * (2 if transactional else 1)
        due_before = before.get("due_at") if before else None
        due_after = None if commit.delete_state else _state_item(commit.state, 1).get("due_at")
        if due_before != due_after:
            self.wcu += (
                1 if (due_before is None or due_after is None) else 2
            )  # GSI insert/delete; move = both
        if before is None:
            self.wcu += 1  # the tenant index learns the profile


def fifty_segments() -> list[dict[str, Any]]:
    segs = []
    for i, city in enumerate(CITIES):
        segs.append({"id": f"city_{i}", "name": city, "condition": {"trait": "city", "eq": city}})
    for i, amount in enumerate([100, 300, 1000, 3000, 10000]):
        segs.append(
            {
                "id": f"spent_{i}",
                "name": f">= {amount}",
                "condition": {"computed": "revenue_total", "gte": amount},
            }
        )
    for i, days in enumerate([7, 14, 30, 60, 90, 180]):
        segs.append(
            {
                "id": f"recent_{i}",
                "name": f"ordered {days}d",
                "condition": {"computed": "last_order_at", "within": f"P{days}D"},
            }
        )
    for i, days in enumerate([30, 90, 180]):
        segs.append(
            {
                "id": f"dormant_{i}",
                "name": f"dormant {days}d",
                "condition": {
                    "all": [
                        {"computed": "order_count", "gte": 1},
                        {"computed": "last_order_at", "older_than": f"P{days}D"},
                    ]
                },
            }
        )
    for i, n in enumerate([2, 3]):
        segs.append(
            {
                "id": f"freq_{i}",
                "name": f"{n} orders 30d",
                "condition": {"event": "Order Completed", "within": "P30D", "count": {"gte": n}},
            }
        )
    for i, stage in enumerate(["prospect", "new", "active", "repeat", "at_risk", "churned"]):
        segs.append({"id": f"life_{i}", "name": stage, "condition": {"lifecycle": stage}})
    for i, group in enumerate(["champions", "loyal", "potential", "at_risk", "hibernating", "lost"]):
        segs.append({"id": f"rfm_{i}", "name": group, "condition": {"rfm": group}})
    for i, tag in enumerate(["vip", "wholesale", "staff", "newsletter"]):
        segs.append({"id": f"tag_{i}", "name": tag, "condition": {"tag": tag}})
    for i, plan in enumerate(["free", "pro"]):
        segs.append({"id": f"plan_{i}", "name": plan, "condition": {"trait": "plan", "eq": plan}})
    segs.append(
        {
            "id": "fan",
            "name": "wechat fan",
            "condition": {"all": [{"identifier": "wechat_openid"}, {"consent": "wechat"}]},
        }
    )
    segs.append(
        {
            "id": "fan_no_order",
            "name": "fan, no order",
            "condition": {"all": [{"segment": "fan"}, {"not": {"computed": "order_count", "gte": 1}}]},
        }
    )
    segs.append(
        {"id": "viewed_7d", "name": "viewed 7d", "condition": {"event": "Product Viewed", "within": "P7D"}}
    )
    segs.append(
        {
            "id": "cart_no_order",
            "name": "cart, no order 7d",
            "condition": {
                "all": [
                    {"event": "Product Added", "within": "P7D"},
                    {"not": {"event": "Order Completed", "within": "P7D"}},
                ]
            },
        }
    )
    segs.append(
        {
            "id": "pro_vip",
            "name": "pro vip",
            "condition": {"all": [{"segment": "plan_1"}, {"segment": "spent_2"}]},
        }
    )
    segs.append({"id": "email_ok", "name": "email ok", "condition": {"consent": "email"}})
    segs.append({"id": "has_email", "name": "has email", "condition": {"identifier": "email"}})
    segs.append({"id": "has_phone", "name": "has phone", "condition": {"identifier": "phone"}})
    segs.append({"id": "signed_up", "name": "signed up", "condition": {"event": "Signed Up"}})
    segs.append(
        {
            "id": "big_30d",
            "name": "spent 500 in 30d",
            "condition": {
                "event": "Order Completed",
                "within": "P30D",
                "sum": {"property": "revenue", "gte": 500},
            },
        }
    )
    return segs[:50]


def stage_costs(people: int, events: int) -> list[dict[str, Any]]:
    from tests.unit.segments.segments_helpers import Person, World

    world = World(NOW - timedelta(days=60))
    world.store = MeteredStore()
    from huiliu.segments.admin import SegmentsAdmin
    from huiliu.segments.service import SegmentsService

    world.service = SegmentsService(world.store, clock=world.clock, cache_seconds=3600, include_profile=True)
    world.admin = SegmentsAdmin(world.store, clock=world.clock)
    segs = fifty_segments()
    assert len(segs) == 50
    world.define(*segs)
    rng = random.Random(11)
    persons = [Person(f"p{i}") for i in range(people)]
    stream = []
    # realistic mix: mostly browsing, some carts, orders, trait and tag updates
    kinds = (
        ["Page Viewed"] * 50
        + ["Product Viewed"] * 20
        + ["Product Added"] * 8
        + ["Order Completed"] * 6
        + ["trait"] * 10
        + ["tag"] * 3
        + ["Signed Up"] * 3
    )
    start = world.clock.now()
    for n in range(events):
        person = rng.choice(persons)
        at = start + timedelta(seconds=n * (60 * 86400 / events))
        kind = rng.choice(kinds)
        if kind == "trait":
            stream.append((at, person.set(city=rng.choice(CITIES), plan=rng.choice(["free", "pro"]))))
        elif kind == "tag":
            stream.append((at, person.tag(rng.choice(["vip", "wholesale", "newsletter"]))))
        elif kind == "Order Completed":
            stream.append((at, person.track(kind, at, revenue=round(rng.uniform(20, 400), 2))))
        else:
            stream.append((at, person.track(kind, at)))
    world.service.plan("acme")  # warm: the plan is cached per container
    store = world.store
    base = (store.calls["read"], store.calls["write"], store.rcu, store.wcu, world.service.metrics.evaluated)
    started = time.perf_counter()
    for at, event in stream:
        world.clock.set(at)
        world.service.handle(event)
    elapsed = time.perf_counter() - started
    reads = store.calls["read"] - base[0]
    writes = store.calls["write"] - base[1]
    rows = [
        {
            "measure": "segments evaluated per profile.changed (50 defined)",
            "engine": "huiliu",
            "value": round((world.service.metrics.evaluated - base[4]) / events, 2),
            "note": f"{events} events, {people} people",
        },
        {
            "measure": "DynamoDB read calls per profile.changed",
            "engine": "huiliu",
            "value": round(reads / events, 3),
            "note": "one BatchGetItem",
        },
        {
            "measure": "read units per profile.changed",
            "engine": "huiliu",
            "value": round((store.rcu - base[2]) / events, 3),
            "note": "strongly consistent, per 4 KB",
        },
        {
            "measure": "write calls per profile.changed",
            "engine": "huiliu",
            "value": round(writes / events, 3),
            "note": "only when a kept field, membership or due time changed",
        },
        {
            "measure": "write units per profile.changed",
            "engine": "huiliu",
            "value": round((store.wcu - base[3]) / events, 3),
            "note": "incl. transactions x2 and keys-only GSI writes",
        },
        {
            "measure": "profile.changed handled per second (in process)",
            "engine": "huiliu",
            "value": round(events / elapsed),
            "note": "memory store",
        },
    ]
    # the sweep: 31 days later, every profile whose membership changes by time alone
    base = (store.calls["read"], store.calls["write"], store.rcu, store.wcu, world.service.metrics.swept)
    reads_q = store.stats.by_op.get("Query", 0)
    world.clock.set(world.clock.now() + timedelta(days=31))
    started = time.perf_counter()
    out = world.service.tick(world.clock.now())
    elapsed = time.perf_counter() - started
    swept = world.service.metrics.swept - base[4]
    queries = store.stats.by_op.get("Query", 0) - reads_q
    rows += [
        {
            "measure": "sweep: profiles re-evaluated (31 days later)",
            "engine": "huiliu",
            "value": swept,
            "note": f"of {people}; {len(out)} transitions",
        },
        {
            "measure": "sweep: read calls per due profile",
            "engine": "huiliu",
            "value": round((store.calls["read"] - base[0] + queries) / max(swept, 1), 3),
            "note": f"{queries} due-index queries + BatchGetItem per 100",
        },
        {
            "measure": "sweep: read units per due profile",
            "engine": "huiliu",
            "value": round((store.rcu - base[2] + queries * 0.5) / max(swept, 1), 3),
            "note": "index queries ~0.5 RCU each",
        },
        {
            "measure": "sweep: write units per due profile",
            "engine": "huiliu",
            "value": round((store.wcu - base[3]) / max(swept, 1), 3),
            "note": f"{round(swept / max(elapsed, 1e-9))} profiles/s in process",
        },
    ]
    return rows


def run(quick: bool = False, profiles: int | None = None) -> list[dict[str, Any]]:
    n = profiles or (2_000 if quick else 20_000)
    rows = evaluation_rates(n, 0.5 if quick else 2.0)
    rows += stage_costs(200 if quick else 2_000, 2_000 if quick else 20_000)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profiles", type=int)
    args = parser.parse_args(argv)
    from benchmarks.__main__ import _table

    print(_table(run(args.quick, args.profiles)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
