"""Concurrent events for the same new person end in one profile (moto SERVER, real threads).

mock_aws is not thread-safe, so a ThreadedMotoServer is started and every thread gets its own
boto3 client pointed at it. Conditional writes + bounded retries make the racers converge.

moto's TransactWriteItems is not isolated under concurrency: it applies writes one by one and, on
a cancelled transaction, restores a deep copy of the whole table taken before it started, wiping
out whatever other requests wrote meanwhile. Real DynamoDB transactions are serializable, so the
fixture serialises moto's per-request item operations with one lock (each HTTP request is still
concurrent; only the server-side apply is atomic, as in DynamoDB).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService, Outcome
from huiliu.models import CanonicalEvent
from moto.server import ThreadedMotoServer

from tests.unit.identity.identity_helpers import TENANT, create_identity_table, make_event

TABLE = "identity-race"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_ATOMIC = ("get_item", "put_item", "update_item", "delete_item", "transact_write_items", "query", "scan")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _ATOMIC}

    def atomic(method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(DynamoDBBackend, name, atomic(method))
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for name, method in originals.items():
        setattr(DynamoDBBackend, name, method)


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="ap-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def table(moto_endpoint: str) -> Iterator[str]:
    client = _client(moto_endpoint)
    create_identity_table(client, TABLE)
    yield moto_endpoint
    client.delete_table(TableName=TABLE)


def _race(endpoint: str, events: list[CanonicalEvent]) -> list[Outcome]:
    barrier = threading.Barrier(len(events))
    results: list[Outcome | BaseException] = [RuntimeError("not run")] * len(events)

    def worker(n: int) -> None:
        repo = IdentityRepository(TABLE, client=_client(endpoint), salt="s")
        service = IdentityService(repo, clock=ManualClock(), salt="s")  # real jittered backoff
        barrier.wait()
        try:
            results[n] = service.process(events[n])
        except BaseException as exc:  # surfaced by the assertion below
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    outcomes = [r for r in results if isinstance(r, Outcome)]
    assert len(outcomes) == len(events), results
    return outcomes


def _live_profile_ids(endpoint: str) -> set[str]:
    repo = IdentityRepository(TABLE, client=_client(endpoint))
    items = repo.client.scan(TableName=TABLE)["Items"]
    return {i["profile_id"]["S"] for i in items if i["sk"]["S"] == "PROFILE" and "merged_into" not in i}


def _claim_owners(endpoint: str) -> set[str]:
    items = _client(endpoint).scan(TableName=TABLE)["Items"]
    return {i["profile_id"]["S"] for i in items if i["sk"]["S"] == "CLAIM"}


@pytest.mark.parametrize("racers", [2, 6])
def test_given_simultaneous_events_for_one_new_person_then_exactly_one_profile_results(
    table: str, racers: int
) -> None:
    events = [
        make_event(("phone", "13800138000"), ("email", "li@x.cn"), traits={"n": n}, minutes=n)
        for n in range(racers)
    ]

    outcomes = _race(table, events)

    assert len({o.profile_id for o in outcomes}) == 1
    assert _live_profile_ids(table) == {outcomes[0].profile_id}
    assert _claim_owners(table) == {outcomes[0].profile_id}


@pytest.mark.parametrize("round_", range(3))
def test_given_simultaneous_events_with_overlapping_identifiers_then_they_converge_on_one_profile(
    table: str, round_: int
) -> None:
    events = [
        make_event(("email", "wu@x.cn")),
        make_event(("phone", "13800138001"), ("email", "wu@x.cn")),
        make_event(("phone", "13800138001"), ("anonymous_id", "dev-9")),
        make_event(("anonymous_id", "dev-9")),
        make_event(("user_id", "u-9"), ("phone", "13800138001")),
    ]

    _race(table, events)

    live = _live_profile_ids(table)
    assert len(live) == 1
    assert _claim_owners(table) == live
    repo = IdentityRepository(TABLE, client=_client(table))
    (pid,) = live
    profile = repo.get_profile(TENANT, pid)
    assert profile is not None
    assert profile.computed["event_count"] == len(events)
