"""The embedded emulator's speed-ups change no answer: a cancelled transaction leaves every item as it
was (moto's rollback, from a light backup), a committed one writes them all, and EventBridge's input
paths parse to the same expressions (cached)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from huiliu_infra.local import moto_fast
from moto import mock_aws


@pytest.fixture
def ddb() -> Iterator[Any]:
    moto_fast.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-east-1")
        for name, keys in (("with-range", ["pk", "sk"]), ("hash-only", ["pk"])):
            client.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(keys, ["HASH", "RANGE"][: len(keys)], strict=True)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        yield client


def _get(client: Any, table: str, **key: str) -> dict[str, Any] | None:
    return client.get_item(TableName=table, Key={k: {"S": v} for k, v in key.items()}).get("Item")


def test_a_cancelled_transaction_changes_nothing(ddb: Any) -> None:
    for n in range(50):  # items the transaction does not touch
        ddb.put_item(TableName="with-range", Item={"pk": {"S": "P"}, "sk": {"S": f"x{n}"}, "v": {"N": "0"}})
    ddb.put_item(TableName="with-range", Item={"pk": {"S": "P"}, "sk": {"S": "a"}, "v": {"N": "1"}})
    ddb.put_item(TableName="hash-only", Item={"pk": {"S": "H"}, "v": {"N": "1"}})
    ddb.put_item(TableName="hash-only", Item={"pk": {"S": "G"}, "v": {"N": "1"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                # applied by moto one by one, then rolled back when the last condition fails
                {
                    "Update": {
                        "TableName": "with-range",
                        "Key": {"pk": {"S": "P"}, "sk": {"S": "a"}},
                        "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": "with-range", "Item": {"pk": {"S": "P"}, "sk": {"S": "new"}}}},
                {"Delete": {"TableName": "hash-only", "Key": {"pk": {"S": "G"}}}},
                {
                    "Put": {
                        "TableName": "hash-only",
                        "Item": {"pk": {"S": "H"}, "v": {"N": "9"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert _get(ddb, "with-range", pk="P", sk="a")["v"] == {"N": "1"}  # type: ignore[index]
    assert _get(ddb, "with-range", pk="P", sk="new") is None
    assert _get(ddb, "hash-only", pk="H")["v"] == {"N": "1"}  # type: ignore[index]
    assert _get(ddb, "hash-only", pk="G") is not None
    count = ddb.query(
        TableName="with-range",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "P"}},
    )["Count"]
    assert count == 51


def test_a_committed_transaction_writes_every_item(ddb: Any) -> None:
    ddb.put_item(TableName="with-range", Item={"pk": {"S": "P"}, "sk": {"S": "a"}, "v": {"N": "1"}})
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "with-range",
                    "Key": {"pk": {"S": "P"}, "sk": {"S": "a"}},
                    "UpdateExpression": "SET v = :two",
                    "ConditionExpression": "v = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}},
                }
            },
            {"Put": {"TableName": "hash-only", "Item": {"pk": {"S": "H"}, "v": {"N": "3"}}}},
        ]
    )
    assert _get(ddb, "with-range", pk="P", sk="a")["v"] == {"N": "2"}  # type: ignore[index]
    assert _get(ddb, "hash-only", pk="H")["v"] == {"N": "3"}  # type: ignore[index]


def test_input_paths_are_parsed_once() -> None:
    moto_fast.install()
    import jsonpath_ng.ext as ext

    first = ext.parse("$.detail.profile_id")
    assert ext.parse("$.detail.profile_id") is first
    assert [m.value for m in first.find({"detail": {"profile_id": "p1"}})] == ["p1"]


# -- PartiQL UPDATE statements in BatchExecuteStatement, as DynamoDB runs them ---------------------
def _update(pk: str, expected_rev: int, **set_values: str) -> dict[str, Any]:
    sets = " ".join(f'SET "{k}"=?' for k in set_values)
    return {
        "Statement": f'UPDATE "with-range" {sets} REMOVE "gone" WHERE "pk"=? AND "sk"=? AND "rev"=?',
        "Parameters": [{"S": v} for v in set_values.values()]
        + [{"S": pk}, {"S": "E"}, {"N": str(expected_rev)}],
    }


def test_a_false_where_fails_only_its_statement_and_the_others_commit(ddb: Any) -> None:
    for pk in ("a", "b", "c"):
        ddb.put_item(
            TableName="with-range",
            Item={
                "pk": {"S": pk},
                "sk": {"S": "E"},
                "rev": {"N": "1"},
                "gone": {"S": "x"},
                "kept": {"B": b"\x01"},
            },
        )
    answer = ddb.batch_execute_statement(
        Statements=[
            _update("a", 1, v="A"),
            _update("b", 7, v="B"),
            _update("missing", 1, v="M"),
            _update("c", 1, v="C"),
        ]
    )["Responses"]
    assert [r.get("Error", {}).get("Code") for r in answer] == [
        None,
        "ConditionalCheckFailed",
        "ConditionalCheckFailed",  # a PartiQL UPDATE never creates an item
        None,
    ]
    a = _get(ddb, "with-range", pk="a", sk="E")
    assert a == {
        "pk": {"S": "a"},
        "sk": {"S": "E"},
        "rev": {"N": "1"},
        "kept": {"B": b"\x01"},
        "v": {"S": "A"},
    }
    assert _get(ddb, "with-range", pk="b", sk="E") == {
        "pk": {"S": "b"},
        "sk": {"S": "E"},
        "rev": {"N": "1"},
        "gone": {"S": "x"},
        "kept": {"B": b"\x01"},
    }
    assert _get(ddb, "with-range", pk="missing", sk="E") is None
    assert _get(ddb, "with-range", pk="c", sk="E")["v"] == {"S": "C"}


def test_statements_outside_the_simple_form_go_to_moto(ddb: Any) -> None:
    ddb.put_item(TableName="with-range", Item={"pk": {"S": "a"}, "sk": {"S": "E"}, "n": {"N": "1"}})
    # A literal instead of a parameter: not the shim's form, moto's own PartiQL runs it.
    literal = ddb.batch_execute_statement(
        Statements=[{"Statement": "UPDATE \"with-range\" SET v='lit' WHERE pk='a' AND sk='E'"}]
    )["Responses"]
    assert "Error" not in literal[0]
    assert _get(ddb, "with-range", pk="a", sk="E")["v"] == {"S": "lit"}
    refused = ddb.batch_execute_statement(
        Statements=[
            {
                "Statement": 'UPDATE "with-range" SET "v"=? WHERE "pk"=?',
                "Parameters": [{"S": "x"}, {"S": "a"}],
            }
        ]
    )["Responses"]
    assert refused[0]["Error"]["Code"] == "ValidationError"  # the key is incomplete


def test_an_item_over_400_kb_is_still_refused_and_one_under_is_kept(ddb: Any) -> None:
    from botocore.exceptions import ClientError

    big = {"pk": {"S": "big"}, "sk": {"S": "E"}, **{f"a{n}": {"S": "x" * 100_000} for n in range(5)}}
    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        ddb.put_item(TableName="with-range", Item=big)
    fits = {"pk": {"S": "fits"}, "sk": {"S": "E"}, **{f"a{n}": {"S": "x" * 100_000} for n in range(3)}}
    ddb.put_item(TableName="with-range", Item=fits)
    assert _get(ddb, "with-range", pk="fits", sk="E") == fits


def test_a_projection_onto_top_level_names_answers_as_moto_does(ddb: Any) -> None:
    item = {
        "pk": {"S": "a"},
        "sk": {"S": "E"},
        "s": {"S": "text"},
        "b": {"B": b"\x00\xff"},
        "t": {"BOOL": True},
        "n": {"N": "12.50"},
        "m": {"M": {"k": {"L": [{"S": "v"}]}}},
    }
    ddb.put_item(TableName="with-range", Item=item)

    def projected(names: str) -> dict[str, Any]:
        got = ddb.get_item(
            TableName="with-range", Key={"pk": {"S": "a"}, "sk": {"S": "E"}}, ProjectionExpression=names
        )
        return dict(got["Item"])

    assert projected("pk, s, b, t, absent") == {k: item[k] for k in ("pk", "s", "b", "t")}
    assert projected("s, n, m") == {k: item[k] for k in ("s", "n", "m")}  # moto's own way (number, map)
    assert projected("m.k[0]") == {"m": {"M": {"k": {"L": [{"S": "v"}]}}}}


def _serialized_both_ways(
    monkeypatch: pytest.MonkeyPatch, operation: str, result: dict[str, Any]
) -> tuple[str, str]:
    from moto.core import serialize
    from moto.core.utils import get_service_model

    moto_fast.install()
    model = get_service_model("dynamodb").operation_model(operation)

    def body() -> str:
        out = serialize.JSONSerializer(operation_model=model, value_picker=serialize.XFormedAttributePicker())
        return str(out.serialize(result)["body"])

    fast = body()
    with monkeypatch.context() as undo:
        for name in ("_serialize_type_structure", "_serialize_structure_member"):
            undo.delattr(serialize.JSONSerializer, name)  # moto's own serialiser again
        return fast, body()


ITEM = {
    "pk": {"S": "T#t#P#p"},
    "sk": {"S": "E#j#once"},
    "n": {"N": "12.50"},
    "b": {"B": "AAH/"},
    "t": {"BOOL": False},
    "z": {"NULL": True},
    "l": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"SS": ["x", "y"]}}}]},
    "m": {"M": {"inner": {"M": {"deep": {"NS": ["1", "2"]}}}, "empty": {"M": {}}}},
}


def test_json_responses_serialise_as_moto_serialises_them(monkeypatch: pytest.MonkeyPatch) -> None:
    result = {
        "Responses": {"t": [ITEM, {"pk": {"S": "x"}, "sk": {"S": "y"}}]},
        "UnprocessedKeys": {},
        "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 2.5}],
    }
    fast, slow = _serialized_both_ways(monkeypatch, "BatchGetItem", result)
    assert fast == slow
    assert '"sk": {"S": "E#j#once"}' in fast


def test_query_and_statement_answers_serialise_as_moto_serialises_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query = {
        "Items": [ITEM],
        "Count": 1,
        "ScannedCount": 3,
        "LastEvaluatedKey": {"pk": {"S": "a"}, "sk": {"S": "b"}},
    }
    fast, slow = _serialized_both_ways(monkeypatch, "Query", query)
    assert fast == slow
    statements = {
        "Responses": [
            {"TableName": "t"},
            {
                "TableName": "t",
                "Error": {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
            },
        ]
    }
    fast, slow = _serialized_both_ways(monkeypatch, "BatchExecuteStatement", statements)
    assert fast == slow


def test_the_module_list_is_moto_s_own() -> None:
    from moto import backends

    moto_fast.install()
    assert list(backends.list_of_moto_modules()) == list(backends.list_of_moto_modules.__wrapped__())  # type: ignore[attr-defined]
    assert "dynamodb" in backends.list_of_moto_modules()
