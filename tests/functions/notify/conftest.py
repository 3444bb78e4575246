"""Notify function tests: one threaded moto server per module (thread-safe, unlike mock_aws, with
DynamoDB's per-request atomicity restored by a lock) and the fake providers on localhost."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from huiliu.bus import MemoryPublisher
from huiliu.notify.fakes import FakeProviders
from huiliu.notify.feedback import FeedbackService
from huiliu.notify.unsubscribe import signing_key
from moto.server import ThreadedMotoServer

from tests.functions.notify.notify_helpers import SALT, Stage, new_stage
from tests.lambda_support import load_function_fresh

_ATOMIC = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "query",
    "batch_get_item",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _ATOMIC if hasattr(DynamoDBBackend, name)}

    def atomic(method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(DynamoDBBackend, name, atomic(method))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for name, method in originals.items():
        setattr(DynamoDBBackend, name, method)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    providers = FakeProviders().start()
    yield providers
    providers.stop()


@pytest.fixture
def stage(moto_endpoint: str, fake: FakeProviders) -> Stage:
    fake.reset()
    return new_stage(moto_endpoint, fake)


@pytest.fixture
def feedback_app(stage: Stage) -> tuple[Any, MemoryPublisher]:
    """The feedback function (a fresh container) wired to this stage's tables and a memory bus."""
    module = load_function_fresh("feedback", f"feedback_app_{uuid.uuid4().hex[:8]}")
    publisher = MemoryPublisher()
    module.configure(
        service=FeedbackService(stage.repo(), stage.clock.now), publisher=publisher, key=signing_key(SALT)
    )
    return module, publisher
