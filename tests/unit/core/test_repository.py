"""The DynamoDB repository base on moto: conditional writes, paging, transactions, batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from huiliu import aws
from huiliu.errors import ConditionFailed
from huiliu.storage.dynamo import DynamoRepository
from moto import mock_aws


@pytest.fixture
def repo() -> Iterator[DynamoRepository]:
    with mock_aws():
        aws.reset_clients()
        aws.client("dynamodb").create_table(
            TableName="t",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoRepository("t")


def test_put_new_refuses_a_taken_key(repo: DynamoRepository) -> None:
    repo.put_new({"pk": "a", "sk": "1", "n": 1})
    with pytest.raises(ConditionFailed):
        repo.put_new({"pk": "a", "sk": "1", "n": 2})
    assert repo.get("a", "1") == {"pk": "a", "sk": "1", "n": 1}


def test_floats_and_nested_values_round_trip(repo: DynamoRepository) -> None:
    repo.put({"pk": "a", "sk": "1", "price": 12.5, "nested": {"list": [1, 2.25, "x"]}, "none": None})
    assert repo.get("a", "1") == {"pk": "a", "sk": "1", "price": 12.5, "nested": {"list": [1, 2.25, "x"]}}


def test_conditional_update_on_version(repo: DynamoRepository) -> None:
    repo.put({"pk": "a", "sk": "1", "version": 1})
    repo.update("a", "1", "SET version = :n", condition="version = :v", values={":n": 2, ":v": 1})
    with pytest.raises(ConditionFailed):
        repo.update("a", "1", "SET version = :n", condition="version = :v", values={":n": 3, ":v": 1})
    assert repo.get("a", "1")["version"] == 2  # type: ignore[index]


def test_query_pages_newest_first_with_prefix(repo: DynamoRepository) -> None:
    repo.batch_write([{"pk": "p", "sk": f"TL#{i:03d}"} for i in range(30)] + [{"pk": "p", "sk": "PROFILE"}])
    page = repo.query("p", sk_prefix="TL#", limit=10, forward=False, consistent=True)
    assert [i["sk"] for i in page.items][:2] == ["TL#029", "TL#028"]
    assert page.next_key is not None
    assert len(list(repo.query_all("p", sk_prefix="TL#"))) == 30


def test_transaction_is_all_or_nothing(repo: DynamoRepository) -> None:
    repo.put({"pk": "taken", "sk": "1"})
    with pytest.raises(ConditionFailed):
        repo.transact(
            [
                {"Put": {"item": {"pk": "new", "sk": "1"}, "condition": "attribute_not_exists(pk)"}},
                {"Put": {"item": {"pk": "taken", "sk": "1"}, "condition": "attribute_not_exists(pk)"}},
            ]
        )
    assert repo.get("new", "1") is None


def test_batch_get_returns_what_exists_and_counts_calls(repo: DynamoRepository) -> None:
    repo.put({"pk": "a", "sk": "1"})
    repo.put({"pk": "b", "sk": "1"})
    before = repo.stats.reads
    found = repo.batch_get([("a", "1"), ("b", "1"), ("c", "1"), ("a", "1")])
    assert sorted(i["pk"] for i in found) == ["a", "b"]
    assert repo.stats.reads == before + 1
