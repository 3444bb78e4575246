"""Journeys benchmark, against the emulator (moto server over HTTP, JourneysTable and the bus as
template.yaml declares them):

1. **Throughput** — enrollments stepped per second by one tick invocation (everything due at once:
   the signup journey's 3-day wait ends, each enrollment requests an SMS and a tag event);
   target >= 500/s. Reported with the function's CPU and the emulator's CPU per step (the
   emulator: moto's server with the local runtime's shims, ``huiliu_infra.local.moto_fast``).
2. **Lateness** — enrollments whose waits end at scattered seconds, a tick every simulated minute:
   how long after its ``next_at`` each step ran (target: never later than one tick, 60 s).
3. **DynamoDB calls and capacity units per transition** — from the repository's call counter and
   the item sizes (moto reports 1.0 capacity for any write).
4. **Fault run** — thousands of enrollments; random crashes after publishing and before committing
   (and after committing, before the counters), publisher failures, SQS redeliveries of the events,
   and every tick overlapped by a second one. Checked against a fault-free run of the pure
   interpreter: zero enrollments lost, zero duplicate actions (no (enrollment, step) ever gets a
   second idempotency key); republished copies of the same key are counted (notify sends once per key).

    python -m benchmarks --only journeys [--quick]
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from huiliu.bus import EventBridgePublisher, MemoryPublisher, OutgoingEvent, bus_publisher
from huiliu.journeys.definition import parse_definition
from huiliu.journeys.examples import example_documents
from huiliu.journeys.interpreter import (
    Env,
    EventInfo,
    ProfileView,
    enroll,
    enrollment_key,
    iso,
    on_due,
    on_event,
)
from huiliu.journeys.repository import JourneysRepository, enrollment_item, heads_pk, journey_pk, profile_item
from huiliu.journeys.service import Definitions, JourneysService, JourneyTicker
from huiliu.storage.dynamo import CallStats, serialize

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
_EMULATOR_PID: list[int] = []  # the emulator process of the run in progress (its CPU is measured)
TENANT = "bench"
TARGET_PER_SECOND = 500


# -- the emulator ------------------------------------------------------------------------------------
@contextmanager
def emulator() -> Any:
    """moto's server on a free port, the template's resources provisioned on it."""
    import os

    from huiliu import aws
    from huiliu.settings import get_settings
    from huiliu_infra.local.provision import provision

    saved = dict(os.environ)
    # Its own process (the machine's second core), as an emulator next to a Lambda would be.
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = "127.0.0.1"
    # moto's server with the local runtime's emulator shims (huiliu_infra.local.moto_fast: PartiQL
    # batch updates run as DynamoDB runs them), as `huiliu local` serves it.
    server = subprocess.Popen(
        [sys.executable, "-m", "huiliu_infra.local.moto_fast", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _EMULATOR_PID[:] = [server.pid]
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{host}:{port}/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "ap-east-1",
            "AWS_DEFAULT_REGION": "ap-east-1",
        }
    )
    aws.reset_clients()
    get_settings.cache_clear()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto keeps its state in module globals shared by every server of the process: start empty.
    urllib.request.urlopen(
        urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10
    ).close()
    try:
        deployment = provision(region="ap-east-1", endpoint=os.environ["AWS_ENDPOINT_URL"])
        os.environ.update(deployment.shared_env())
        get_settings.cache_clear()
        yield deployment
    finally:
        server.terminate()
        server.wait(timeout=10)
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()
        get_settings.cache_clear()


def _doc(journey_id: str) -> dict[str, Any]:
    return next(d for d in example_documents() if d["id"] == journey_id)


def publish_journey(repo: JourneysRepository, doc: dict[str, Any]) -> None:
    repo.put(
        {
            "pk": heads_pk(TENANT),
            "sk": f"J#{doc['id']}",
            "journey_id": doc["id"],
            "status": "active",
            "active_version": 1,
            "latest_version": 1,
            "definition": doc,
        }
    )
    repo.put({"pk": journey_pk(TENANT, doc["id"]), "sk": "V#000001", "version": 1, "definition": doc})


def seed_enrollments(
    repo: JourneysRepository, doc: dict[str, Any], n: int, spread: timedelta, seed: int = 7
) -> list[Any]:
    """``n`` people entered ``doc`` at scattered moments within ``spread`` after T0 (written in batches)."""
    journey = parse_definition({**doc, "version": 1})
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    enrollments = []
    for i in range(n):
        view = ProfileView(f"p{i:07d}", version=1, identifiers=[{"type": "user_id", "value": f"u{i}"}])
        at = T0 + timedelta(seconds=rng.uniform(0, spread.total_seconds()))
        key = enrollment_key(journey, f"trigger-{i}", None)
        tr = enroll(
            journey,
            TENANT,
            view,
            trigger={"kind": "event", "event_id": f"trigger-{i}"},
            key=key,
            instance=None,
            now=at,
            env=Env(),
        )
        tr.enrollment.rev = 1
        enrollments.append(tr.enrollment)
        items.append(enrollment_item(tr.enrollment, repo.shards))
        items.append(profile_item(TENANT, view))
    repo.batch_write(items)
    return enrollments


# -- 1. throughput ----------------------------------------------------------------------------------
def throughput(n: int, workers: int, *, fan_out: bool = False) -> dict[str, Any]:
    from huiliu.settings import get_settings

    settings = get_settings()
    stats = CallStats()
    repo = JourneysRepository(settings.journeys_table, stats=stats)
    publish_journey(repo, _doc("signup-coupon"))
    seed_enrollments(repo, _doc("signup-coupon"), n, timedelta(minutes=30))
    bus = settings.event_bus_name
    if not fan_out:
        # A bus without rules on the same emulator: real PutEvents calls, but the emulator does not
        # deliver each event to its queues inside the call (~30 ms per event here; AWS does not wait).
        from huiliu import aws

        bus = "bench-sink"
        aws.client("events").create_event_bus(Name=bus)
    # with fan-out: the publisher producers use (send requests travel on the bus topic)
    publisher = bus_publisher() if fan_out else EventBridgePublisher(bus)
    ticker = JourneyTicker(repo, publisher, definitions=Definitions(repo), workers=workers)
    before = _snapshot(stats)
    import os

    times = os.times()
    emulator_cpu = _emulator_cpu_seconds()
    cpu = time.process_time()
    report = ticker.tick(T0 + timedelta(days=3, hours=1))
    cpu = time.process_time() - cpu
    after = os.times()
    emulator_after = _emulator_cpu_seconds()
    user_ms = (after.user - times.user) * 1000 / max(report.stepped, 1)
    system_ms = (after.system - times.system) * 1000 / max(report.stepped, 1)
    calls = _delta(stats, before)
    rate = report.stepped / report.seconds if report.seconds else 0.0
    cpu_ms = cpu * 1000 / report.stepped if report.stepped else 0.0
    return {
        "measure": f"stepped per second, one tick invocation ({workers} workers, "
        + ("bus with the template's rules: the emulator delivers inside PutEvents)" if fan_out else "bus)"),
        "enrollments": report.stepped,
        "seconds": round(report.seconds, 2),
        "per_second": round(rate),
        "target": f">= {TARGET_PER_SECOND}",
        "ok": rate >= TARGET_PER_SECOND,
        # The function's own CPU per transition (the emulator runs in another process): the rate
        # one invocation reaches once the emulator is not the limit.
        "function_cpu_ms_per_step": round(cpu_ms, 2),
        "cpu_bound_per_second": round(1000 / cpu_ms) if cpu_ms else None,
        # user: Python (ours + botocore); system: the kernel's share — sockets, mostly a TCP connect
        # and close per call because the emulator answers every request with Connection: close.
        "user_ms_per_step": round(user_ms, 2),
        "system_ms_per_step": round(system_ms, 2),
        # The emulator's own CPU per step (its process, over the tick): moto serves one request
        # at a time under its GIL, so this bounds the rate at 1000 / it on its core.
        "emulator_cpu_ms_per_step": (
            round((emulator_after - emulator_cpu) * 1000 / report.stepped, 2)
            if report.stepped and emulator_cpu is not None and emulator_after is not None
            else None
        ),
        "dynamodb_calls": calls,
        "dynamodb_calls_per_step": {op: round(n / report.stepped, 3) for op, n in calls.items()}
        if report.stepped
        else {},
        "publish_calls": math.ceil(report.published / 10),
    }


def _emulator_cpu_seconds() -> float | None:
    """User + system CPU the emulator's process has used so far (Linux /proc), None elsewhere."""
    import os

    if not _EMULATOR_PID:
        return None
    try:
        fields = Path(f"/proc/{_EMULATOR_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _snapshot(stats: CallStats) -> dict[str, int]:
    return dict(stats.by_op)


def _delta(stats: CallStats, before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in stats.by_op.items() if n - before.get(op, 0)}


# -- 2. lateness ------------------------------------------------------------------------------------
def lateness(n: int) -> dict[str, Any]:
    from huiliu.settings import get_settings

    settings = get_settings()
    repo = JourneysRepository(settings.journeys_table)
    doc = {
        "id": "lateness",
        "trigger": {"event": "Signed Up"},
        "steps": [
            {"id": "w1", "type": "wait", "duration": "17m"},
            {"id": "w2", "type": "wait", "duration": "43m"},
            {"id": "s", "type": "send", "channel": "sms", "template": "t"},
        ],
    }
    publish_journey(repo, doc)
    seed_enrollments(repo, doc, n, timedelta(minutes=60), seed=11)
    ticker = JourneyTicker(repo, MemoryPublisher(), definitions=Definitions(repo), workers=8)
    late: list[float] = []
    ticks = 0
    now = T0.replace(second=0, microsecond=0)
    end = T0 + timedelta(hours=2, minutes=5)
    while now <= end:
        report = ticker.tick(now)
        late += report.lateness_seconds
        ticks += 1
        now += timedelta(minutes=1)
    return {
        "measure": "lateness due -> stepped, a tick every simulated minute",
        "enrollments": n,
        "transitions": len(late),
        "ticks": ticks,
        "p50_s": round(statistics.median(late), 1) if late else None,
        "max_s": round(max(late), 1) if late else None,
        "target": "<= 60 s (one tick)",
        "ok": bool(late) and max(late) <= 60 and len(late) == 2 * n,
    }


# -- 3. calls and capacity per transition -------------------------------------------------------------
def per_transition(n: int) -> list[dict[str, Any]]:
    from huiliu.settings import get_settings

    from benchmarks.meter import item_size

    settings = get_settings()
    stats = CallStats()
    repo = JourneysRepository(settings.journeys_table, stats=stats)
    publish_journey(repo, _doc("signup-coupon"))
    enrollments = seed_enrollments(repo, _doc("signup-coupon"), n, timedelta(minutes=5), seed=3)
    ticker = JourneyTicker(repo, MemoryPublisher(), definitions=Definitions(repo), workers=1, page_size=100)
    before = _snapshot(stats)
    report = ticker.tick(T0 + timedelta(days=3, hours=1))
    calls = _delta(stats, before)
    per = {op: round(c / report.stepped, 3) for op, c in calls.items()}
    waiting = enrollment_item(enrollments[0], repo.shards)
    done = repo.enrollments_of(TENANT, enrollments[0].profile_id)[0]
    finished = enrollment_item(done, repo.shards)
    wait_kb = item_size(serialize(waiting)) / 1024
    done_kb = item_size(serialize(finished)) / 1024
    profile_kb = (
        item_size(
            serialize(
                profile_item(
                    TENANT, ProfileView("p0000000", identifiers=[{"type": "user_id", "value": "u0"}])
                )
            )
        )
        / 1024
    )
    # Tick path per transition: its share of the GSI Query (eventually consistent), a consistent
    # BatchGetItem of the enrollment and the projection, one conditional UPDATE statement (billed as
    # an UpdateItem: max(old, new) KB, +1 GSI delete) sent 25 to a BatchExecuteStatement, and the
    # funnel counters' UpdateItem shared by the page.
    rcu = wait_kb / 4 / 2 + math.ceil(wait_kb / 4) + math.ceil(profile_kb / 4)
    wcu = math.ceil(max(wait_kb, done_kb)) + 1 + calls.get("UpdateItem", 0) / report.stepped
    # Event path: a profile.changed that enrols (Query of the person, projection put, enrollment put
    # with its GSI entry, the enrollment index item, counters).
    event_rcu = 0.5
    event_wcu = math.ceil(profile_kb) + math.ceil(wait_kb) + 1 + 1 + 1
    return [
        {
            "measure": "tick: DynamoDB calls per transition",
            "transitions": report.stepped,
            **{f"{op}": v for op, v in per.items()},
            "read_units": round(rcu, 2),
            "write_units": round(wcu, 2),
            "item_kb": f"waiting {wait_kb:.2f}, done {done_kb:.2f}",
        },
        {
            "measure": "event path: one enrolment from profile.changed",
            "calls": "Query 1, PutItem 2, UpdateItem 1, BatchWriteItem 1 (index)",
            "read_units": event_rcu,
            "write_units": event_wcu,
        },
    ]


# -- 4. the fault run ---------------------------------------------------------------------------------
class Crash(RuntimeError):
    pass


class FlakyRepo(JourneysRepository):
    """Crashes at random: before a commit (after its actions were published) or right after it."""

    def __init__(self, *args: Any, rng: random.Random, p: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng = rng
        self.p = p
        self.lock = threading.Lock()
        self.crashes = 0

    def _roll(self) -> bool:
        with self.lock:
            hit = self.rng.random() < self.p
            self.crashes += hit
            return hit

    def save_enrollment(self, e: Any, *, expected_rev: int | None, parked: str | None = None) -> None:
        if self._roll():
            raise Crash("crashed after publishing, before the commit")
        super().save_enrollment(e, expected_rev=expected_rev, parked=parked)
        if self._roll():
            raise Crash("crashed after the commit, before the counters")

    def save_enrollments(self, writes: Any) -> list[bool]:
        """A batch request (up to 25 commits) crashes before it is sent, or after it was answered."""
        if self._roll():
            raise Crash("crashed after publishing, before the batch commit")
        done = super().save_enrollments(writes)
        if self._roll():
            raise Crash("crashed after the batch commit, before the counters")
        return done


class RecordingPublisher:
    """Remembers every notification.requested / event.ingested published; fails at random."""

    def __init__(self, rng: random.Random, p: float) -> None:
        self.rng = rng
        self.p = p
        self.lock = threading.Lock()
        self.events: list[OutgoingEvent] = []
        self.failures = 0

    def publish(self, events: Any) -> int:
        with self.lock:
            if self.rng.random() < self.p:
                self.failures += 1
                raise Crash("PutEvents failed")
            self.events.extend(events)
        return 1


def _keys(events: list[OutgoingEvent]) -> list[tuple[str, str, str]]:
    out = []
    for e in events:
        d = e.detail
        if e.detail_type == "notification.requested":
            out.append((d["enrollment_id"], d["step_id"], d["idempotency_key"]))
        else:
            j = d["context"]["journey"]
            out.append((j["enrollment_id"], j["step_id"], d["message_id"]))
    return out


def fault_run(
    n: int, p_crash: float = 0.05, p_publish: float = 0.03, seed: int = 42, via_events: int | None = None
) -> dict[str, Any]:
    """n people: ``via_events`` of them sign up through the event path (each event delivered 1-3
    times, shuffled, with crashes), the rest are written directly (the emulator is slow); a third of
    everyone orders during the wait (event path, redelivered); then overlapping, crashing ticks until
    nothing is due."""
    from huiliu.clock import ManualClock
    from huiliu.settings import get_settings

    settings = get_settings()
    rng = random.Random(seed)
    table = settings.journeys_table
    base = JourneysRepository(table)
    publish_journey(base, _doc("signup-coupon"))
    publisher = RecordingPublisher(rng, p_publish)
    clock = ManualClock(T0)
    events_repo = FlakyRepo(table, rng=rng, p=p_crash)
    service = JourneysService(
        events_repo, publisher, clock=clock, definitions=Definitions(events_repo, cache_seconds=60)
    )

    def changed(i: int, version: int, event: str, eid: str) -> dict[str, Any]:
        pid = f"f{i:07d}"
        return {
            "event_id": eid,
            "tenant_id": TENANT,
            "occurred_at": iso(clock.now()),
            "profile_id": pid,
            "version": version,
            "created": version == 1,
            "event": {
                "message_id": eid,
                "type": "track",
                "name": event,
                "timestamp": iso(clock.now()),
                "properties": {},
            },
            "profile": {
                "profile_id": pid,
                "version": version,
                "identifiers": [{"type": "user_id", "value": f"u{i}"}],
            },
        }

    def deliver(batch: list[dict[str, Any]]) -> tuple[int, int]:
        queue = [d for d in batch for _ in range(rng.randint(1, 3))]  # redeliveries
        rng.shuffle(queue)
        handled = failures = 0
        while queue:
            detail = queue.pop()
            try:
                service.handle_detail("profile.changed", detail)
                handled += 1
            except Exception:  # a crash: SQS delivers the message again later
                failures += 1
                queue.insert(0, detail)
        return handled, failures

    via = n if via_events is None else min(n, via_events)
    signups = [changed(i, 1, "Signed Up", f"su-{i}") for i in range(via)]
    t0 = time.perf_counter()
    _, f1 = deliver(signups)
    if via < n:
        journey = parse_definition({**_doc("signup-coupon"), "version": 1})
        items: list[dict[str, Any]] = []
        for i in range(via, n):
            view = ProfileView(f"f{i:07d}", version=1, identifiers=[{"type": "user_id", "value": f"u{i}"}])
            tr = enroll(
                journey,
                TENANT,
                view,
                trigger={"kind": "event", "event_id": f"su-{i}"},
                key="once",
                instance=None,
                now=T0,
                env=Env(),
            )
            tr.enrollment.rev = 1
            items += [enrollment_item(tr.enrollment, base.shards), profile_item(TENANT, view)]
        base.batch_write(items)
    clock.advance(timedelta(days=1))
    buyers = set(rng.sample(range(n), n // 3))
    _, f2 = deliver([changed(i, 2, "Order Completed", f"oc-{i}") for i in sorted(buyers)])

    # Ticks: two overlapping invocations per simulated minute, crashing at random, until none is due.
    tickers = [
        JourneyTicker(
            FlakyRepo(table, rng=rng, p=p_crash), publisher, definitions=Definitions(base), workers=8
        )
        for _ in range(2)
    ]
    now = T0 + timedelta(days=3)
    tick_errors = 0
    ticks = 0
    for _ in range(120):
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(t.tick, now) for t in tickers]
        for f in futures:
            ticks += 1
            if f.exception() is not None:
                tick_errors += 1
        if not sum(len(p) for s in base.all_shards() for p in base.due(s, iso(now))):
            break
        now += timedelta(minutes=1)
    seconds = time.perf_counter() - t0

    # The truth: the pure interpreter, no faults.
    journey = parse_definition({**_doc("signup-coupon"), "version": 1})
    expected: set[tuple[str, str, str]] = set()
    for i in range(n):
        view = ProfileView(f"f{i:07d}", identifiers=[{"type": "user_id", "value": f"u{i}"}])
        tr = enroll(
            journey,
            TENANT,
            view,
            trigger={"kind": "event", "event_id": "x"},
            key="once",
            instance=None,
            now=T0,
            env=Env(),
        )
        e = tr.enrollment
        if i in buyers:
            tr2 = on_event(
                journey, e, view, EventInfo("o", "Order Completed", {}), T0 + timedelta(days=1), Env()
            )
            assert tr2 is not None
            continue
        tr3 = on_due(journey, e, view, T0 + timedelta(days=3), Env())
        assert tr3 is not None
        expected |= {(e.enrollment_id, a.step_id, _wire_key(a)) for a in tr3.actions}
    published = _keys(publisher.events)
    distinct = set(published)
    per_step = Counter((eid, step) for eid, step, _ in distinct)
    duplicates = sum(1 for c in per_step.values() if c > 1)
    states = Counter()
    lost = 0
    for i in range(n):
        found = base.enrollments_of(TENANT, f"f{i:07d}")
        if len(found) != 1 or found[0].live:
            lost += 1
        for e in found:
            states[e.exit_reason or e.status] += 1
    return {
        "measure": "fault run: crashes, redeliveries, overlapping ticks",
        "enrollments": n,
        "crashes": sum(r.crashes for r in (events_repo, *[t.repo for t in tickers])) + publisher.failures,
        "event_retries": f1 + f2,
        "ticks": ticks,
        "tick_errors": tick_errors,
        "actions_expected": len(expected),
        "actions_distinct": len(distinct),
        "missing": len(expected - distinct),
        "unexpected": len(distinct - expected),
        "duplicate_actions": duplicates,
        "republished_same_key": len(published) - len(distinct),
        "lost_enrollments": lost,
        "states": dict(states),
        "seconds": round(seconds, 1),
        "ok": duplicates == 0 and lost == 0 and distinct == expected,
    }


def _wire_key(action: Any) -> str:
    return (
        action.idempotency_key if action.kind in ("send", "webhook") else f"journeys-{action.idempotency_key}"
    )


# -- run ----------------------------------------------------------------------------------------------
def run(quick: bool = False, progress: Any = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(*new: dict[str, Any]) -> None:
        rows.extend(new)
        if progress:
            progress(table(list(new)))

    with emulator():
        add(throughput(300 if quick else 2000, workers=16))
    with emulator():
        add(throughput(100 if quick else 200, workers=16, fan_out=True))
    with emulator():
        add(lateness(60 if quick else 200))
    with emulator():
        add(*per_transition(100 if quick else 300))
    with emulator():
        add(fault_run(300 if quick else 2000, via_events=100 if quick else 300))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        head = row.get("measure", "")
        rest = ", ".join(f"{k}={v}" for k, v in row.items() if k != "measure")
        lines.append(f"{head}\n    {rest}")
    return "\n".join(lines)


if __name__ == "__main__":
    run(quick="--quick" in sys.argv, progress=lambda text: print(text, flush=True))
