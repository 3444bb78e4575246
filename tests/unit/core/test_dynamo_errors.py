"""TransactionCanceledException reasons told apart: only a lost race is ConditionFailed (retried).

A transaction cancelled for a validation error (an item too large or too deep, a number DynamoDB
cannot hold) used to be retried ten times as "contention" and dead-lettered; now it fails at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from huiliu.errors import ConditionFailed
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.storage.dynamo import DynamoRepository, cancellation_reasons, deserialize, is_race, serialize

from tests.unit.identity.identity_helpers import make_event


def _cancelled(*codes: str, with_list: bool = True) -> ClientError:
    message = "Transaction cancelled, please refer cancellation reasons for specific reasons "
    message += f"[{', '.join(codes)}]"
    response: dict[str, Any] = {"Error": {"Code": "TransactionCanceledException", "Message": message}}
    if with_list:
        response["CancellationReasons"] = [{"Code": c} for c in codes]
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


class _FailingClient:
    def __init__(self, error: ClientError) -> None:
        self.error = error
        self.calls = 0

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise self.error

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize("with_list", [True, False])
def test_reasons_are_read_from_the_response_or_the_message(with_list: bool) -> None:
    exc = _cancelled("None", "ValidationError", with_list=with_list)
    assert cancellation_reasons(exc) == ["None", "ValidationError"]
    assert not is_race(exc)
    assert is_race(_cancelled("None", "ConditionalCheckFailed", with_list=with_list))
    assert is_race(_cancelled("TransactionConflict", "None", with_list=with_list))


@pytest.mark.parametrize(
    "codes",
    [
        ("None", "ValidationError"),
        ("ConditionalCheckFailed", "ValidationError"),  # a race AND a permanent error: not retryable
        ("ItemCollectionSizeLimitExceeded",),
        ("ThrottlingError", "None"),
    ],
)
def test_a_transaction_cancelled_for_another_reason_is_not_a_race(codes: tuple[str, ...]) -> None:
    repo = DynamoRepository("t", client=_FailingClient(_cancelled(*codes)))
    with pytest.raises(ClientError) as caught:
        repo.transact([{"Put": {"item": {"pk": "a", "sk": "1"}}}])
    assert not isinstance(caught.value, ConditionFailed)


def test_a_lost_race_is_condition_failed() -> None:
    repo = DynamoRepository("t", client=_FailingClient(_cancelled("None", "ConditionalCheckFailed")))
    with pytest.raises(ConditionFailed):
        repo.transact([{"Put": {"item": {"pk": "a", "sk": "1"}}}])


def test_identity_does_not_retry_a_validation_error_as_contention() -> None:
    client = _FailingClient(_cancelled("None", "ValidationError", "None"))

    class Repo(IdentityRepository):
        def load(self, tenant: str, **kwargs: Any) -> Any:  # nothing stored yet
            from huiliu.identity.repository import Snapshot

            return Snapshot(missing_profiles=set(kwargs.get("profile_ids") or []))

    service = IdentityService(Repo("identity", client=client), backoff=lambda attempt: None)
    with pytest.raises(ClientError):
        service.process(make_event(("email", "a@example.com"), name="Signed Up"))
    assert client.calls == 1  # not ten attempts of "contention"


def test_large_integral_floats_round_trip_without_38_digit_overflow() -> None:
    """1E+50 written from a float came back as a 51-digit int that could not be written again."""
    stored = serialize({"n": 1e50, "i": 10**37, "f": 12.5})
    back = deserialize(stored)
    assert back == {"n": 1e50, "i": 10**37, "f": 12.5}
    assert isinstance(back["i"], int)
    assert serialize(back) == stored  # writing it back works
