"""The cost meter prices a PartiQL write statement as the single write it stands for."""

from __future__ import annotations

from benchmarks.meter import _statement_target


def _keys(table: str) -> list[str]:
    return ["pk", "sk"]


def test_an_update_statement_names_its_table_and_key() -> None:
    statement = {
        "Statement": 'UPDATE "T" SET "a"=? SET "rev"=? REMOVE "b" WHERE "pk"=? AND "sk"=? AND "rev"=?',
        "Parameters": [{"S": "x"}, {"N": "2"}, {"S": "P"}, {"S": "E"}, {"N": "1"}],
    }
    assert _statement_target(statement, _keys) == ("T", {"pk": {"S": "P"}, "sk": {"S": "E"}}, "UpdateItem")


def test_a_delete_statement_and_statements_it_cannot_price() -> None:
    delete = {"Statement": 'DELETE FROM "T" WHERE "pk"=? AND "sk"=?', "Parameters": [{"S": "P"}, {"S": "E"}]}
    assert _statement_target(delete, _keys) == ("T", {"pk": {"S": "P"}, "sk": {"S": "E"}}, "DeleteItem")
    assert (
        _statement_target(
            {"Statement": 'UPDATE "T" SET a=? WHERE "pk"=?', "Parameters": [{"S": "1"}, {"S": "P"}]}, _keys
        )
        is None
    )
    assert _statement_target({"Statement": "SELECT * FROM T WHERE pk='P'"}, _keys) is None
