"""The identity Lambda handler on moto: SQS batch of EventBridge envelopes -> profiles + out-events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from huiliu.bus import MemoryPublisher
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import DetailType
from moto import mock_aws

from tests.lambda_support import LambdaContext, load_function_fresh, sqs_record
from tests.unit.identity.identity_helpers import (
    TENANT,
    create_identity_table,
    create_tenants_table,
    ingested_body,
    make_event,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from huiliu import aws
    from huiliu.settings import get_settings

    for key, value in {
        "AWS_REGION": "ap-east-1",
        "AWS_DEFAULT_REGION": "ap-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "IDENTITY_TABLE": "identity-fn",
        "TENANTS_TABLE": "tenants-fn",
        "EVENT_BUS_NAME": "huiliu-fn",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Huiliu",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "LOCALSTACK_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    aws.reset_clients()
    with mock_aws():
        client = aws.client("dynamodb")
        create_identity_table(client, "identity-fn")
        create_tenants_table(client, "tenants-fn")
        yield client
    get_settings.cache_clear()
    aws.reset_clients()


@pytest.fixture
def handler(env: Any) -> Iterator[tuple[ModuleType, MemoryPublisher]]:
    module = load_function_fresh("identity", "identity_app")
    publisher = MemoryPublisher()
    module.configure(publisher=publisher)
    yield module, publisher
    module.configure()


_CTX = LambdaContext(function_name="identity", memory_limit_in_mb=512)


def _record(body: str, message_id: str) -> dict[str, Any]:
    return sqs_record(body, message_id, queue="identity", attempt=1)


def test_given_a_batch_with_one_bad_record_when_handled_then_only_that_record_fails(
    handler: tuple[ModuleType, MemoryPublisher], env: Any
) -> None:
    module, publisher = handler
    good = _record(ingested_body(make_event(("email", "a@b.cn"), traits={"name": "A"})), "sqs-1")
    bad = _record("{not json", "sqs-2")

    result = module.handler({"Records": [good, bad]}, _CTX)

    assert result == {"batchItemFailures": [{"itemIdentifier": "sqs-2"}]}
    assert [e.detail_type for e in publisher.events] == [DetailType.PROFILE_CHANGED]
    assert publisher.events[0].detail["tenant_id"] == TENANT
    claim = env.get_item(
        TableName="identity-fn", Key={"pk": {"S": f"T#{TENANT}#ID#email#a@b.cn"}, "sk": {"S": "CLAIM"}}
    )
    assert claim["Item"]["profile_id"]["S"] == publisher.events[0].detail["profile_id"]


def test_given_the_same_batch_delivered_twice_then_the_profile_is_written_once(
    handler: tuple[ModuleType, MemoryPublisher], env: Any
) -> None:
    module, _publisher = handler
    repo = IdentityRepository("identity-fn", client=env)
    service = IdentityService(repo, clock=ManualClock(), backoff=lambda attempt: None)
    module.configure(service=service, publisher=_publisher)
    batch = {
        "Records": [
            _record(
                ingested_body(
                    make_event(
                        ("phone", "13800138000"),
                        name="Order Completed",
                        properties={"order_id": "o-9", "revenue": 10},
                    )
                ),
                "s-1",
            )
        ]
    }

    module.handler(batch, _CTX)
    module.handler(batch, _CTX)

    profile_pk = _publisher.events[0].detail["profile_id"]
    item = repo.get_profile(TENANT, profile_pk)
    assert item is not None
    assert item.version == 1
    assert item.computed["order_count"] == 1


class _FlakyPublisher(MemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.fail_next = True

    def publish(self, events: Any) -> int:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("EventBridge unavailable")
        return super().publish(events)


def test_given_publishing_fails_after_the_commit_when_the_record_is_redelivered_then_its_events_go_out(
    handler: tuple[ModuleType, MemoryPublisher], env: Any
) -> None:
    module, _ = handler
    publisher = _FlakyPublisher()
    module.configure(publisher=publisher)
    batch = {"Records": [_record(ingested_body(make_event(("email", "late@x.cn"), name="Signed Up")), "s-7")]}

    with pytest.raises(BatchProcessingError):  # every record failed: SQS redelivers the batch
        module.handler(batch, _CTX)
    second = module.handler(batch, _CTX)

    assert second == {"batchItemFailures": []}
    assert [e.detail_type for e in publisher.events] == [DetailType.PROFILE_CHANGED]
    assert publisher.events[0].detail["event"]["name"] == "Signed Up"


def test_given_an_event_linking_two_profiles_when_handled_then_merged_and_changed_are_published(
    handler: tuple[ModuleType, MemoryPublisher],
) -> None:
    module, publisher = handler
    records = [
        _record(ingested_body(make_event(("email", "m@x.cn"))), "a"),
        _record(ingested_body(make_event(("phone", "13800138009"), minutes=1)), "b"),
    ]
    module.handler({"Records": records}, _CTX)

    link = _record(ingested_body(make_event(("email", "m@x.cn"), ("phone", "13800138009"), minutes=2)), "c")
    module.handler({"Records": [link]}, _CTX)

    kinds = [e.detail_type for e in publisher.events[2:]]
    assert kinds == [DetailType.PROFILE_CHANGED, DetailType.PROFILE_MERGED]
    assert publisher.events[3].detail["correlation_id"] == "corr-1"
