"""A record failing its last attempt reaches the DLQ with its reason; ``huiliu dlq`` shows and redrives it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huiliu import aws
from huiliu.stage import configure, queue_handler
from huiliu_infra import cli_dlq

from tests.lambda_support import LambdaContext, sqs_record

BODY = json.dumps({"source": "huiliu.test", "detail-type": "no.such.type", "detail": {"tenant_id": "acme"}})


def _record(deployed: Any, attempt: int, message_id: str = "m-1") -> dict[str, Any]:
    record = sqs_record(BODY, message_id, attempt=attempt, attributes={"SentTimestamp": "1795000000000"})
    return record | {"eventSourceARN": deployed.queues["IdentityQueue"].arn}


_CTX = LambdaContext(function_name="identity", memory_limit_in_mb=128, aws_request_id="r1")


@pytest.fixture
def handler(deployed: Any) -> Any:
    from huiliu import dead_letters

    dead_letters._policies.clear()
    configure("dlq_test", service=object())
    return queue_handler("dlq_test")


def _dlq(deployed: Any) -> list[cli_dlq.DeadLetterQueue]:
    return cli_dlq.discover(aws.client("sqs"), {k: q.url for k, q in deployed.queues.items()})


def test_an_early_failure_is_retried_and_not_dead_lettered(deployed: Any, handler: Any) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):  # the whole batch failed: SQS delivers it again
        handler({"Records": [_record(deployed, attempt=1)]}, _CTX)

    identity = cli_dlq.pick(_dlq(deployed), "identity")
    assert cli_dlq.peek(aws.client("sqs"), identity.url, 10) == []


def test_the_last_failure_lands_in_the_dlq_with_its_reason_and_is_acknowledged(
    deployed: Any, handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    max_receive = deployed.queues["IdentityQueue"].max_receive_count

    result = handler({"Records": [_record(deployed, attempt=max_receive)]}, _CTX)

    assert result == {"batchItemFailures": []}
    queues = _dlq(deployed)
    identity = cli_dlq.pick(queues, "identity")
    assert identity.source == "IdentityQueue"
    letters = cli_dlq.peek(aws.client("sqs"), identity.url, 10)
    assert len(letters) == 1
    assert letters[0].reason.startswith("BadRecord: not a valid bus event")
    assert letters[0].stage == "dlq_test"
    assert letters[0].attempts == str(max_receive)
    assert letters[0].tenant_id == "acme"
    # peeking consumed nothing
    assert len(cli_dlq.peek(aws.client("sqs"), identity.url, 10)) == 1


def test_redrive_sends_the_message_back_to_its_source_without_the_failure_attributes(
    deployed: Any, handler: Any
) -> None:
    handler({"Records": [_record(deployed, attempt=5)]}, _CTX)
    sqs = aws.client("sqs")
    identity = cli_dlq.pick(_dlq(deployed), "IdentityDLQ")

    moved = cli_dlq.redrive(sqs, identity, 10)

    assert len(moved) == 1
    assert cli_dlq.peek(sqs, identity.url, 10) == []
    back = sqs.receive_message(
        QueueUrl=deployed.queues["IdentityQueue"].url, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    assert back[0]["Body"] == BODY
    assert "failure_reason" not in (back[0].get("MessageAttributes") or {})


def test_a_message_moved_by_sqs_itself_says_where_the_reason_is(deployed: Any) -> None:
    sqs = aws.client("sqs")
    identity = cli_dlq.pick(_dlq(deployed), "identity")
    sqs.send_message(QueueUrl=identity.url, MessageBody=BODY)

    (letter,) = cli_dlq.peek(sqs, identity.url, 10)

    assert letter.reason == cli_dlq.NO_REASON


def _throttle_dlq_sends(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[float]:
    """The next ``failures`` SendMessage calls fail as a throttle past the SDK's retries would."""
    from botocore.exceptions import ClientError
    from huiliu import dead_letters

    sqs = aws.client("sqs")
    real = sqs.send_message
    left = [failures]
    slept: list[float] = []

    def send(**request: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendMessage"
            )
        return real(**request)

    monkeypatch.setattr(sqs, "send_message", send)
    monkeypatch.setattr(dead_letters, "_sleep", slept.append)
    return slept


def test_a_throttled_dlq_send_is_tried_again_so_the_reason_is_kept(
    deployed: Any, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept = _throttle_dlq_sends(monkeypatch, failures=2)
    max_receive = deployed.queues["IdentityQueue"].max_receive_count

    result = handler({"Records": [_record(deployed, attempt=max_receive)]}, _CTX)

    assert result == {"batchItemFailures": []}
    assert slept == [0.2, 0.4]
    (letter,) = cli_dlq.peek(aws.client("sqs"), cli_dlq.pick(_dlq(deployed), "identity").url, 10)
    assert letter.reason.startswith("BadRecord: not a valid bus event")


def test_a_dlq_send_failing_every_try_leaves_the_record_to_sqs_redrive(
    deployed: Any, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from huiliu import dead_letters

    _throttle_dlq_sends(monkeypatch, failures=dead_letters.FORWARD_ATTEMPTS)
    max_receive = deployed.queues["IdentityQueue"].max_receive_count

    with pytest.raises(BatchProcessingError):  # reported failed: SQS's redrive policy moves it
        handler({"Records": [_record(deployed, attempt=max_receive)]}, _CTX)

    assert cli_dlq.peek(aws.client("sqs"), cli_dlq.pick(_dlq(deployed), "identity").url, 10) == []
