"""Identity resolution benchmark: grouping quality, DynamoDB cost per event, throughput.

    python benchmarks/bench_identity.py                      # 5,000 people / 50,000 events
    python benchmarks/bench_identity.py --quick              # 500 / 5,000
    python benchmarks/bench_identity.py --people 100000 --events 1000000

1. Quality: a synthetic stream with ground truth — noisy phone formats (+86 138-…, 138…, 0086…),
   email case/whitespace, the web journey (anonymous browsing -> email sign-up -> log-in with a
   user_id on the same browser), shared-device anonymous ids, placeholder phones/emails, late
   (out of order) events and redeliveries — is resolved in process with the in-memory repository; the
   grouping is scored with pairwise precision/recall against the true people, next to naive
   exact-string matching (union of events sharing any raw identifier string) on the same stream.
   Events that only carry a shared device's anonymous id cannot be attributed by any rule; they
   are processed but left out of the scores (counted in ``ambiguous``).
2. Cost: DynamoDB calls and capacity units per event on moto for a known person (warm and cold
   cache), a new person and a merge. moto reports 1.0 capacity for any write, so units come from
   item sizes: RCU = ceil(size / 4 KB) per item read (1 for a missing item, consistent reads),
   WCU = ceil(size / 1 KB) per item written, x2 inside transactions.
3. Throughput: events per second through the service with the in-memory repository.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "shared", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from huiliu.clock import ManualClock  # noqa: E402
from huiliu.identity.repository import IdentityRepository, MemoryIdentityRepository  # noqa: E402
from huiliu.identity.service import IdentityService  # noqa: E402
from huiliu.models import CanonicalEvent, Identifier, Source  # noqa: E402
from huiliu.tenants import TenantSettings  # noqa: E402

TENANT = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLACEHOLDER_PHONE = "13900000000"
PLACEHOLDER_EMAIL = "noemail@shop.cn"
SETTINGS = TenantSettings(tenant_id=TENANT, blocked_values=[PLACEHOLDER_PHONE, PLACEHOLDER_EMAIL])


# -- the synthetic stream ----------------------------------------------------------------------------
def _phone_variants(digits: str) -> list[str]:
    a, b, c = digits[:3], digits[3:7], digits[7:]
    return [digits, f"+86 {a}-{b}-{c}", f"0086{digits}", f"+86 ({a}) {b} {c}", f"{a} {b} {c}", f"+86{digits}"]


def _email_variants(email: str) -> list[str]:
    local, domain = email.split("@")
    return [email, email.upper(), f" {email} ", f"{local.capitalize()}@{domain.upper()}"]


def make_stream(people: int, events: int, seed: int = 7) -> tuple[list[CanonicalEvent], dict[str, int]]:
    """Events (arrival order, with duplicates) and the true person of every message id (-1: ambiguous)."""
    rng = random.Random(seed)
    devices = [f"shared-dev-{n}" for n in range(max(1, people // 40))]
    persons = []
    for n in range(people):
        digits = f"13{rng.randint(0, 9)}{n:08d}"
        persons.append(
            {
                "phone": digits,
                "email": f"user{n}@example{n % 7}.cn",
                "member_id": f"M{n:07d}" if rng.random() < 0.6 else None,
                "user_id": f"U{n:07d}" if rng.random() < 0.5 else None,
                "openid": f"oWX{n:08d}" if rng.random() < 0.5 else None,
                "anon": [f"anon-{n}-{k}" for k in range(rng.randint(1, 2))],
                "device": rng.choice(devices) if rng.random() < 0.15 else None,
            }
        )
    stream: list[tuple[datetime, CanonicalEvent, int]] = []
    seq = 0

    def emit(
        person: int, ids: list[tuple[str, str]], when: datetime, name: str, props: dict | None = None
    ) -> None:
        nonlocal seq
        seq += 1
        event = CanonicalEvent(
            tenant_id=TENANT,
            message_id=f"e{seq}",
            type="track",
            event=name,
            timestamp=when,
            received_at=when,
            source=Source(connector="bench"),
            identifiers=[Identifier(type=t, value=v) for t, v in ids],
            traits={"city": rng.choice(["Shanghai", "Hangzhou", "Beijing"])} if rng.random() < 0.3 else {},
            properties=props or {},
        )
        stream.append((when, event, person))

    per_person = max(1, events // max(1, people) - 2)
    for n, p in enumerate(persons):
        start = T0 + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
        phones, emails = _phone_variants(p["phone"]), _email_variants(p["email"])

        def phone(options: list[str] = phones) -> str:
            return rng.choice(options)

        def email(options: list[str] = emails) -> str:
            return rng.choice(options)

        if p["user_id"]:
            # the web journey: anonymous browsing, email sign-up, then log-in with the user_id,
            # all on the same browser (its anonymous id links them)
            browser = ("anonymous_id", p["anon"][0])
            emit(n, [browser], start - timedelta(minutes=3), "Page Viewed")
            emit(n, [browser, ("email", email())], start - timedelta(minutes=2), "Signed Up")
            emit(n, [("user_id", p["user_id"]), browser], start - timedelta(minutes=1), "Signed In")
        signup = [("phone", phone()), ("email", email())]
        if p["member_id"]:
            signup.append(("member_id", p["member_id"]))
        emit(n, signup, start, "Signed Up")
        for k, anon in enumerate(p["anon"]):  # every browser the person uses logs in once
            emit(
                n, [("anonymous_id", anon), ("phone", phone())], start + timedelta(minutes=2 + k), "Signed In"
            )
        for k in range(per_person - 1):
            when = start + timedelta(minutes=5 * (k + 1))
            roll = rng.random()
            if roll < 0.25:
                ids = [("anonymous_id", rng.choice(p["anon"]))]
            elif roll < 0.40:
                ids = [("anonymous_id", rng.choice(p["anon"])), ("phone", phone())]
            elif roll < 0.55:
                ids = [("email", email())]
            elif roll < 0.65 and p["device"]:
                ids = [("anonymous_id", p["device"]), ("email", email())]
            elif roll < 0.75 and p["openid"]:
                ids = [("wechat_openid", p["openid"]), ("phone", phone())]
            elif roll < 0.85:
                ids = [("phone", phone()), ("email", rng.choice([PLACEHOLDER_EMAIL, "null", email()]))]
            else:
                ids = [("member_id", p["member_id"])] if p["member_id"] else [("phone", phone())]
                ids.append(("phone", rng.choice([PLACEHOLDER_PHONE, "+86 139-0000-0000", phone()])))
            name = rng.choice(["Product Viewed", "Order Completed", "Page Viewed"])
            props = (
                {"order_id": f"o{n}-{k}", "revenue": rng.randint(10, 500)}
                if name == "Order Completed"
                else {}
            )
            emit(n, ids, when, name, props)
    # Device-only events on shared devices: no rule can attribute them.
    truth = {e.message_id: person for _, e, person in stream}
    for n, p in enumerate(persons):
        if p["device"] and rng.random() < 0.3:
            emit(n, [("anonymous_id", p["device"])], T0 + timedelta(days=31), "Page Viewed")
            truth[stream[-1][1].message_id] = -1
    stream.sort(key=lambda row: row[0])
    ordered = [e for _, e, _ in stream]
    # Late events: 10% arrive up to a few hundred positions late; 1% are redelivered.
    for i in range(len(ordered)):
        if rng.random() < 0.10:
            j = min(len(ordered) - 1, i + rng.randint(1, 300))
            ordered[i], ordered[j] = ordered[j], ordered[i]
    for _ in range(len(ordered) // 100):
        ordered.insert(rng.randrange(len(ordered)), rng.choice(ordered))
    return ordered, truth


# -- scoring -----------------------------------------------------------------------------------------------
def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(predicted: dict[str, Any], truth: dict[str, int]) -> tuple[float, float, int]:
    scored = [m for m in truth if truth[m] >= 0 and m in predicted]
    if not scored:
        raise ValueError("no event of the stream was found processed: nothing to score")
    cells = Counter((predicted[m], truth[m]) for m in scored)
    clusters = Counter(predicted[m] for m in scored)
    people = Counter(truth[m] for m in scored)
    tp = sum(_pairs(c) for c in cells.values())
    pred_pairs = sum(_pairs(c) for c in clusters.values())
    true_pairs = sum(_pairs(c) for c in people.values())
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    return precision, recall, len(clusters)


def naive_grouping(events: list[CanonicalEvent]) -> dict[str, Any]:
    """Exact-string matching: events sharing any raw (type, value) string are one person."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for event in events:
        node = ("msg", event.message_id)
        find(node)
        for ident in event.identifiers:
            raw = ("id", ident.type, ident.value)
            parent[find(raw)] = find(node)
    return {e.message_id: find(("msg", e.message_id)) for e in events}


def service_grouping(repo: MemoryIdentityRepository) -> dict[str, str]:
    profiles = {i["profile_id"]: i for (_pk, sk), i in repo.items.items() if sk == "PROFILE"}

    def live(pid: str) -> str:
        while profiles.get(pid, {}).get("merged_into"):
            pid = profiles[pid]["merged_into"]
        return pid

    # an applied event's processed marker: its timeline item with the out-events (or an old marker)
    grouping = {
        pk.rsplit("#", 1)[1]: live(i["profile_id"]) for (pk, sk), i in repo.items.items() if sk == "PROCESSED"
    }
    for (_pk, sk), item in repo.items.items():
        if sk.startswith("TL#") and "out" in item:
            grouping[str(item["message_id"])] = live(item["profile_id"])
    return grouping


def quality_and_speed(people: int, events: int) -> list[dict[str, Any]]:
    stream, truth = make_stream(people, events)
    repo = MemoryIdentityRepository(salt="bench", copy_items=False)
    clock = ManualClock(T0)
    service = IdentityService(
        repo, settings_for=lambda t: SETTINGS, clock=clock, salt="bench", backoff=lambda a: None
    )
    started = time.perf_counter()
    for event in stream:
        clock.advance(timedelta(milliseconds=10))
        service.process(event)
    elapsed = time.perf_counter() - started
    ambiguous = sum(1 for v in truth.values() if v < 0)
    rows = []
    for method, grouping in (
        ("huiliu rules", service_grouping(repo)),
        ("naive exact-string", naive_grouping(stream)),
    ):
        precision, recall, clusters = pairwise(grouping, truth)
        rows.append(
            {
                "section": "quality",
                "method": method,
                "people": people,
                "events": len(stream),
                "clusters": clusters,
                "precision": round(precision, 5),
                "recall": round(recall, 5),
                "ambiguous": ambiguous,
            }
        )
    rows.append(
        {
            "section": "throughput",
            "method": "in-process, memory repository",
            "events": len(stream),
            "seconds": round(elapsed, 2),
            "events_per_s": round(len(stream) / elapsed),
        }
    )
    return rows


# -- DynamoDB cost on moto ---------------------------------------------------------------------------------
def _attr_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _attr_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(_attr_size(v) + 1 for v in raw)
    if kind in ("SS", "BS"):
        return sum(len(x) for x in raw)
    return sum(_attr_size({"N": x}) for x in raw)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode()) + _attr_size(v) for k, v in item.items())


class MeteredClient:
    """Wraps a boto3 DynamoDB client: counts calls and computes capacity units from item sizes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reset()

    def reset(self) -> None:
        self.reads = self.writes = 0
        self.rcu = self.wcu = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        resp = self._client.batch_get_item(**kwargs)
        self.reads += 1
        for table, request in kwargs["RequestItems"].items():
            found = resp.get("Responses", {}).get(table, [])
            factor = 1.0 if request.get("ConsistentRead") else 0.5
            self.rcu += sum(math.ceil(item_size(i) / 4096) * factor for i in found)
            self.rcu += (len(request["Keys"]) - len(found)) * factor  # a missing item still costs
        return resp

    def get_item(self, **kwargs: Any) -> Any:
        resp = self._client.get_item(**kwargs)
        self.reads += 1
        factor = 1.0 if kwargs.get("ConsistentRead") else 0.5
        self.rcu += max(1, math.ceil(item_size(resp.get("Item", {})) / 4096)) * factor
        return resp

    def query(self, **kwargs: Any) -> Any:
        resp = self._client.query(**kwargs)
        self.reads += 1
        factor = 1.0 if kwargs.get("ConsistentRead") else 0.5
        self.rcu += max(1, math.ceil(sum(item_size(i) for i in resp.get("Items", [])) / 4096)) * factor
        return resp

    def transact_write_items(self, **kwargs: Any) -> Any:
        resp = self._client.transact_write_items(**kwargs)
        self.writes += 1
        for op in kwargs["TransactItems"]:
            ((_kind, body),) = op.items()
            self.wcu += 2 * math.ceil(item_size(body.get("Item") or body.get("Key")) / 1024)
        return resp

    def put_item(self, **kwargs: Any) -> Any:
        self.writes += 1
        self.wcu += math.ceil(item_size(kwargs["Item"]) / 1024)  # a failed condition costs too
        return self._client.put_item(**kwargs)

    def batch_write_item(self, **kwargs: Any) -> Any:
        resp = self._client.batch_write_item(**kwargs)
        self.writes += 1
        for requests in kwargs["RequestItems"].values():
            for request in requests:
                item = (request.get("PutRequest") or {}).get("Item")
                self.wcu += max(1, math.ceil(item_size(item) / 1024)) if item else 1
        return resp


def _event(n: int, ids: list[tuple[str, str]], name: str = "Product Viewed", **props: Any) -> CanonicalEvent:
    when = T0 + timedelta(minutes=n)
    return CanonicalEvent(
        tenant_id=TENANT,
        message_id=f"cost-{n}",
        type="track",
        event=name,
        timestamp=when,
        received_at=when,
        source=Source(connector="bench"),
        identifiers=[Identifier(type=t, value=v) for t, v in ids],
        traits={"city": "Hangzhou", "level": "gold"},
        properties=props or {"product_id": "p-1", "price": 99},
    )


def cost_on_moto(repeats: int) -> list[dict[str, Any]]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    import boto3
    from moto import mock_aws

    totals: dict[str, list[tuple[int, int, float, float]]] = defaultdict(list)
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="ap-east-1")
        raw.create_table(
            TableName="bench-identity",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        client = MeteredClient(raw)

        def service() -> IdentityService:
            repo = IdentityRepository("bench-identity", client=client, salt="bench")
            return IdentityService(repo, settings_for=lambda t: SETTINGS, clock=ManualClock(T0), salt="bench")

        warm = service()
        n = 0

        def measure(label: str, svc: IdentityService, event: CanonicalEvent) -> None:
            client.reset()
            svc.process(event)
            totals[label].append((client.reads, client.writes, client.rcu, client.wcu))

        for k in range(repeats):
            phone, email = f"1380000{k:04d}", f"cost{k}@x.cn"
            n += 1
            measure(
                "new person (phone+email)", warm, _event(n, [("phone", phone), ("email", email)], "Signed Up")
            )
            for _ in range(3):
                n += 1
                measure("known person, warm container", warm, _event(n, [("phone", phone)]))
            n += 1
            measure(
                "known person, order event",
                warm,
                _event(
                    n, [("email", email)], "Order Completed", order_id=f"o{k}", revenue=120, currency="CNY"
                ),
            )
            n += 1
            measure("known person, cold container", service(), _event(n, [("email", email)]))
            other_phone, other_email = f"1390001{k:04d}", f"merge{k}@x.cn"
            n += 1
            warm.process(_event(n, [("phone", other_phone)]))
            n += 1
            warm.process(_event(n, [("email", other_email)]))
            n += 1
            measure(
                "merge of two profiles", warm, _event(n, [("phone", other_phone), ("email", other_email)])
            )
    rows = []
    for label, samples in totals.items():
        count = len(samples)
        rows.append(
            {
                "section": "dynamodb cost",
                "scenario": label,
                "read_calls": round(sum(s[0] for s in samples) / count, 2),
                "write_calls": round(sum(s[1] for s in samples) / count, 2),
                "rcu": round(sum(s[2] for s in samples) / count, 2),
                "wcu": round(sum(s[3] for s in samples) / count, 2),
            }
        )
    return rows


def run(quick: bool = False, people: int | None = None, events: int | None = None) -> list[dict[str, Any]]:
    people = people or (500 if quick else 5_000)
    events = events or (5_000 if quick else 50_000)
    return quality_and_speed(people, events) + cost_on_moto(3 if quick else 10)


def print_table(rows: list[dict[str, Any]]) -> None:
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        sections[row["section"]].append(row)
    for name, items in sections.items():
        columns = [c for c in items[0] if c != "section"]
        widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in items)) for c in columns}
        print(f"\n== {name} ==")
        print("  ".join(c.ljust(widths[c]) for c in columns))
        for row in items:
            print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 people / 5,000 events")
    parser.add_argument("--people", type=int)
    parser.add_argument("--events", type=int)
    args = parser.parse_args(argv)
    print_table(run(args.quick, args.people, args.events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
