"""Segments benchmark: compiled evaluation rate next to rule-engine and json-logic-qubit on the same
rules and profiles; segments evaluated per profile.changed with 50 segments defined; DynamoDB calls
and capacity units per profile.changed and per swept profile.

    python -m benchmarks --only segments [--quick]
    python benchmarks/bench_segments.py --profiles 20000

Capacity units come from item sizes (moto reports 1.0 whatever the size): a read unit per 4 KB
(strongly consistent), a write unit per 1 KB of the larger of the old and new item, plus the index
writes: the keys-only due index when an item enters, moves in or leaves it, the tenant_members index
when a profile's memberships or RFM cell change. The call shape is DynamoSegmentsStore's (one
BatchGetItem; one conditional PutItem, never a transaction), checked on moto by
tests/functions/test_segments_stage.py.
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
from huiliu.segments.repository import TENANT_INDEX_ATTRIBUTES, Commit, MemorySegmentsStore, _state_item

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


def _rate_rules(tests: list[Any], items: list[Any], min_seconds: float) -> float:
    """Evaluations (profile x rule) per second, one core, in process: profile by profile, every
    rule on each (as the stage does: one context per profile, then its segments)."""
    done, started = 0, time.perf_counter()
    while True:
        for item in items:
            for test in tests:
                test(item)
        done += len(items) * len(tests)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


def _logic(rule: dict[str, Any]) -> Any:
    import json_logic

    return lambda data: json_logic.jsonLogic(rule, data)


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
    mixes = {"realistic mix": RULES, "one 4-clause rule": [RULES[-1]]}
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

        k = len(rules)
        # the same profiles and rules for all three; what is timed is the evaluation itself
        ours = _rate_rules(compiled, contexts, min_seconds)
        small = flats[: max(200, n_profiles // 20)]
        engine_rate = _rate_rules([r.matches for r in engines], small, min_seconds / 2)
        logic_rate = _rate_rules([_logic(j) for j in logics], small, min_seconds / 2)
        best = max(engine_rate, logic_rate)
        for name, rate in (
            ("huiliu compiled", ours),
            ("rule-engine", engine_rate),
            ("json-logic-qubit", logic_rate),
        ):
            rows.append(
                {
                    "measure": f"evaluations/s ({label}, {k} rule{'s' if k > 1 else ''})",
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
        self.by_cause = {"state": 0.0, "due index": 0.0, "tenant index": 0.0}

    def get_states(self, tenant: str, profile_ids: Any) -> dict[str, tuple[ProfileState, int]]:
        found = super().get_states(tenant, profile_ids)
        self.calls["read"] += 1
        sizes = [_size(_state_item(s, wv)) for s, wv in found.values()] or [1]
        self.rcu += sum(math.ceil(s / 4096) for s in sizes)
        return found

    def commit(self, commit: Commit) -> None:
        """One conditional PutItem/DeleteItem: ceil(max(old, new) / 1 KB) units, plus the index
        entries it adds, moves or changes (due: keys only; tenant_members: keys + memberships + RFM)."""
        key = (f"T#{commit.state.tenant_id}#P#{commit.state.profile_id}", "STATE")
        before = self.items.get(key)
        super().commit(commit)
        after = self.items.get(key)
        self.calls["write"] += 1
        size = max(_size(before) if before else 0, _size(after) if after else 0)
        units = {"state": max(1, math.ceil(size / 1024)), "due index": 0, "tenant index": 0}
        due_before = before.get("due_at") if before else None
        due_after = after.get("due_at") if after else None
        if due_before != due_after:  # GSI insert/delete; a move is both
            units["due index"] = 1 if (due_before is None or due_after is None) else 2
        projected = [
            {k: item.get(k) for k in ("tenant_shard", *TENANT_INDEX_ATTRIBUTES)} if item else None
            for item in (before, after)
        ]
        if projected[0] != projected[1]:
            entry = projected[1] or projected[0] or {}
            units["tenant index"] = max(1, math.ceil((_size(entry) + 40) / 1024))  # + the table's keys
        for cause, n in units.items():
            self.by_cause[cause] += n
            self.wcu += n


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


def example_segments() -> list[dict[str, Any]]:
    from huiliu_infra.cli_segments import load_files

    return load_files(str(Path(__file__).resolve().parents[1] / "examples" / "segments"))


def _stream(people: int, events: int, start: datetime, seed: int = 11) -> list[tuple[datetime, Any]]:
    from tests.unit.segments.segments_helpers import Person

    rng = random.Random(seed)
    persons = [Person(f"p{i}") for i in range(people)]
    # mostly browsing; some carts, orders, trait and tag updates (60 days of traffic)
    kinds = (
        ["Page Viewed"] * 50
        + ["Product Viewed"] * 20
        + ["Product Added"] * 8
        + ["Order Completed"] * 6
        + ["trait"] * 10
        + ["tag"] * 3
        + ["Signed Up"] * 3
    )
    stream = []
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
    return stream


def stage_costs(label: str, segs: list[dict[str, Any]], people: int, events: int) -> list[dict[str, Any]]:
    """Per profile.changed: segments evaluated, calls and units; the sweep runs every simulated hour
    (as in AWS, where it runs every minute), and is metered on its own."""
    from huiliu.contracts import ProfileChanged, ReplayRequested, derive_event_id
    from huiliu.segments.admin import SegmentsAdmin
    from huiliu.segments.service import SegmentsService

    from tests.unit.segments.segments_helpers import World

    world = World(NOW - timedelta(days=60))
    store = world.store = MeteredStore()
    service = world.service = SegmentsService(
        store, clock=world.clock, cache_seconds=1e9, include_profile=True
    )
    world.admin = SegmentsAdmin(store, clock=world.clock)
    world.define(*segs)
    service.plan("acme")  # warm: the plan is cached per container
    stream = _stream(people, events, world.clock.now())
    event_side = {"reads": 0, "writes": 0, "rcu": 0.0, "wcu": 0.0, "evaluated": 0, "transitions": 0}
    keys = ("reads", "writes", "rcu", "wcu", "swept", "transitions", "queries", "ticks")
    sweep_side: dict[str, Any] = dict.fromkeys(keys, 0)
    backfill_side: dict[str, Any] = dict.fromkeys((*keys, "replays", "profiles"), 0)
    latest: dict[str, Any] = {}

    causes = dict.fromkeys(store.by_cause, 0.0)

    def metered(side: dict[str, Any], call: Any) -> Any:
        before = (store.calls["read"], store.calls["write"], store.rcu, store.wcu)
        by_cause = dict(store.by_cause)
        out = call()
        if side is event_side:
            for cause, n in store.by_cause.items():
                causes[cause] += n - by_cause[cause]
        side["reads"] += store.calls["read"] - before[0]
        side["writes"] += store.calls["write"] - before[1]
        side["rcu"] += store.rcu - before[2]
        side["wcu"] += store.wcu - before[3]
        side["transitions"] += len(out)
        return out

    next_tick = world.clock.now() + timedelta(hours=1)
    handling = 0.0
    for at, event in stream:
        while next_tick <= at:
            world.clock.set(next_tick)
            before = service.metrics.swept
            queries = store.stats.by_op.get("Query", 0)
            out = metered(sweep_side, lambda: service.tick(world.clock.now()))
            sweep_side["swept"] += service.metrics.swept - before
            sweep_side["queries"] += store.stats.by_op.get("Query", 0) - queries
            sweep_side["ticks"] += 1
            next_tick += timedelta(hours=1)
            for request in [o for o in out if isinstance(o, ReplayRequested)]:
                # new RFM breakpoints: identity replays every live profile (its latest snapshot)
                sweep_side["transitions"] -= 1
                backfill_side["replays"] += 1
                for pid, last in latest.items():
                    replayed = ProfileChanged(
                        event_id=derive_event_id(request.replay_id, pid),
                        tenant_id=last.tenant_id,
                        occurred_at=last.occurred_at,
                        profile_id=pid,
                        version=last.version,
                        profile=last.profile,
                        replay=True,
                        replay_id=request.replay_id,
                    )
                    metered(backfill_side, lambda r=replayed: service.handle(r))
                    backfill_side["profiles"] += 1
        world.clock.set(at)
        before = service.metrics.evaluated
        tick = time.perf_counter()
        metered(event_side, lambda e=event: service.handle(e))
        handling += time.perf_counter() - tick
        event_side["evaluated"] += service.metrics.evaluated - before
        latest[event.profile_id] = event
    elapsed = handling
    e, w = event_side, sweep_side
    swept = max(w["swept"], 1)
    usd = (e["rcu"] * 0.125 + e["wcu"] * 0.625) / events  # per event, USD per million at list prices
    return [
        {
            "measure": f"[{label}] segments evaluated per profile.changed",
            "engine": "huiliu",
            "value": round(e["evaluated"] / events, 2),
            "note": f"of {len(segs)} defined; {events} events, {people} people, 60 days",
        },
        {
            "measure": f"[{label}] read calls / read units per profile.changed",
            "engine": "huiliu",
            "value": f"{e['reads'] / events:.3f} / {e['rcu'] / events:.3f}",
            "note": "one BatchGetItem, strongly consistent, unless nothing kept can change",
        },
        {
            "measure": f"[{label}] write calls / write units per profile.changed",
            "engine": "huiliu",
            "value": f"{e['writes'] / events:.3f} / {e['wcu'] / events:.3f}",
            "note": f"{e['transitions'] / events:.3f} transitions/event; no write unless kept data changed",
        },
        {
            "measure": f"[{label}] write units per profile.changed, by cause",
            "engine": "huiliu",
            "value": " / ".join(f"{n / events:.3f}" for n in causes.values()),
            "note": " / ".join(causes) + f"; {service.metrics.skipped / events:.2f} of events need no read",
        },
        {
            "measure": f"[{label}] DynamoDB USD per million profile.changed",
            "engine": "huiliu",
            "value": round(usd, 3),
            "note": f"{round(events / elapsed)} events/s in process",
        },
        {
            "measure": f"[{label}] backfills after RFM recomputation: profiles / write units each",
            "engine": "huiliu",
            "value": f"{backfill_side['profiles']} / "
            f"{backfill_side['wcu'] / max(backfill_side['profiles'], 1):.3f}",
            "note": f"{backfill_side['replays']} replays, {backfill_side['transitions']} transitions "
            f"(identity's replay of every profile's latest snapshot)",
        },
        {
            "measure": f"[{label}] sweep: due profiles re-evaluated",
            "engine": "huiliu",
            "value": w["swept"],
            "note": f"{w['transitions']} transitions by time, hourly ticks",
        },
        {
            "measure": f"[{label}] sweep: reads / read units per due profile",
            "engine": "huiliu",
            "value": f"{w['reads'] / swept:.3f} / {w['rcu'] / swept:.3f}",
            "note": "BatchGetItem per 100 due profiles (the state comes with it)",
        },
        {
            "measure": f"[{label}] sweep: fixed cost of one tick",
            "engine": "huiliu",
            "value": f"{w['queries'] / max(w['ticks'], 1):.1f} queries",
            "note": "keys-only due index, 16 shards, ~0.5 RCU each: $0.04/month at a tick a minute",
        },
        {
            "measure": f"[{label}] sweep: write units per due profile",
            "engine": "huiliu",
            "value": round(w["wcu"] / swept, 3),
            "note": f"{w['transitions'] / swept:.2f} transitions per due profile",
        },
    ]


def run(quick: bool = False, profiles: int | None = None) -> list[dict[str, Any]]:
    n = profiles or (2_000 if quick else 20_000)
    rows = evaluation_rates(n, 0.5 if quick else 2.0)
    people, events = (200, 2_000) if quick else (2_000, 20_000)
    rows += stage_costs("14 shipped examples", example_segments(), people, events)
    segs = fifty_segments()
    assert len(segs) == 50
    rows += stage_costs("50 segments", segs, people, events)
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


# -- rows of the cost meter (benchmarks/bench_cost.py) ---------------------------------------------
def setup_with_example_segments(ctx: Any, n: int) -> None:
    """Unmetered: the shipped examples saved (their backfill runs now) and n known buyers."""
    import contextlib
    import io

    from huiliu_infra import demo_segments

    with contextlib.redirect_stdout(io.StringIO()):
        demo_segments.apply_examples(ctx.runtime)
    for i in range(n):
        ctx.send(_cost_order(ctx, i, "first"))


def _cost_order(ctx: Any, i: int, tag: str) -> Any:
    import uuid

    from huiliu_infra import sources

    payload = {
        "userId": f"seg-{ctx.run}-{i}",
        "event": "Order Completed",
        "messageId": uuid.uuid4().hex,
        "timestamp": ctx.runtime.clock.now().isoformat(),
        "properties": {"order_id": f"{ctx.run}-{i}-{tag}", "revenue": 40 + 7 * i, "currency": "CNY"},
    }
    return sources.segment(ctx.connectors["segment"], "track", payload, label="segment track order")


def drive_orders_with_segments(ctx: Any, n: int) -> int:
    """Metered: a second order by each known buyer, with the 14 example segments defined."""
    for i in range(n):
        ctx.send(_cost_order(ctx, i, "second"))
    return n
