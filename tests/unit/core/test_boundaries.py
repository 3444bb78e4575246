"""Bounded contexts hold in IAM, not just in code: no function's role reaches another stage's table.

Each stage owns its tables (DESIGN §3, §8); what it needs from another stage arrives on the bus.
Every function may read the tenants table (tenant configuration is read-only shared config). The
admin API (and the IAM-only ops API) are the composition surfaces over the stages' tables and are
listed as such; a new function is held to its stage's tables by its logical name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from huiliu_infra import cfn
from huiliu_infra.local.provision import TEMPLATE

# Function logical-name prefix -> the tables that stage owns.
OWNED: dict[str, set[str]] = {
    "Ingest": {"IdempotencyTable"},
    "Import": {"IdempotencyTable"},
    "Identity": {"IdentityTable"},
    "Segment": {"SegmentsTable"},
    "Journey": {"JourneysTable"},
    "Notify": {"MessagesTable"},
    "Feedback": {"MessagesTable"},
    "Report": {"ReportsTable"},
}
SHARED_READ = {"TenantsTable"}
COMPOSITION = {"AdminFunction", "OpsFunction"}  # ops: keys in the tenants table, reports (read)
WRITE_ACTIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            yield node["Ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _table_access(role: dict[str, Any], tables: set[str]) -> dict[str, set[str]]:
    """table -> DynamoDB actions the role's policies grant on it."""
    access: dict[str, set[str]] = {}
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            dynamo = {a.split(":", 1)[1] for a in actions if a.startswith("dynamodb:")}
            if not dynamo:
                continue
            for ref in _refs(statement.get("Resource")):
                if ref in tables:
                    access.setdefault(ref, set()).update(dynamo)
    return access


def test_no_function_reaches_another_stages_table(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    tables = {k for k, v in resources.items() if v["Type"] == "AWS::DynamoDB::Table"}
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    assert functions
    checked = 0
    for logical, fn in functions.items():
        if logical in COMPOSITION:
            continue
        role_ref = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        access = _table_access(resources[role_ref], tables)
        owned = next((t for prefix, t in OWNED.items() if logical.startswith(prefix)), None)
        assert owned is not None, f"{logical}: which stage owns it? add its prefix to OWNED"
        for table, actions in access.items():
            if table in owned:
                continue
            assert table in SHARED_READ, f"{logical} reaches {table}, another stage's table"
            assert not actions & WRITE_ACTIONS, f"{logical} may write {table} ({sorted(actions)})"
        checked += 1
    assert checked >= 9
