"""IAM in template.yaml makes the journeys boundary true: the journeys and journey-tick functions
write only JourneysTable, read only TenantsTable besides it, and talk to others through the bus."""

from __future__ import annotations

import json
from typing import Any

import pytest
from huiliu_infra import cfn
from huiliu_infra.local.provision import TEMPLATE

WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
)


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")["Resources"]


def _statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = resources[role]["Properties"].get("Policies", [])
    return [st for p in policies for st in p["PolicyDocument"]["Statement"]]


def _tables(statement: dict[str, Any]) -> set[str]:
    text = json.dumps(statement["Resource"])
    return {
        name
        for name in (
            "JourneysTable",
            "TenantsTable",
            "IdentityTable",
            "SegmentsTable",
            "MessagesTable",
            "IdempotencyTable",
        )
        if f'"Ref": "{name}"' in text or f'"Fn::GetAtt": ["{name}", "Arn"]' in text
    }


@pytest.mark.parametrize("role", ["JourneysFunctionRole", "JourneyTickFunctionRole"])
def test_journeys_functions_touch_only_their_table_the_tenants_and_the_bus(
    resources: dict[str, Any], role: str
) -> None:
    seen_tables: set[str] = set()
    for st in _statements(resources, role):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        dynamo = [a for a in actions if a.startswith("dynamodb:")]
        if dynamo:
            tables = _tables(st)
            seen_tables |= tables
            if any(a in WRITE_ACTIONS for a in dynamo):
                assert tables == {"JourneysTable"}, (role, actions, tables)
            else:
                assert tables <= {"JourneysTable", "TenantsTable"}, (role, tables)
        elif any(a.startswith("events:") for a in actions):
            assert actions == ["events:PutEvents"]
            assert '"Ref": "EventBus"' in json.dumps(st["Resource"])
        elif any(a.startswith("sns:") for a in actions):
            assert actions == ["sns:Publish"]  # the bus topic (huiliu.bus routes send requests there)
            assert "BusTopic" in json.dumps(st["Resource"])
        else:
            assert all(a.startswith("sqs:") for a in actions), (role, actions)  # its own DLQ (stage runner)
    assert seen_tables == {"JourneysTable", "TenantsTable"}


@pytest.mark.parametrize("role", ["JourneysFunctionRole", "JourneyTickFunctionRole"])
def test_journeys_functions_may_commit_with_partiql_updates_on_their_table_only(
    resources: dict[str, Any], role: str
) -> None:
    """Enrollment commits are PartiQL UPDATEs (BatchExecuteStatement): without dynamodb:PartiQLUpdate
    every tick and every exit would be AccessDenied on AWS (the emulator does not check IAM)."""
    granted = [
        st
        for st in _statements(resources, role)
        if "dynamodb:PartiQLUpdate" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    ]
    assert granted
    assert all(_tables(st) == {"JourneysTable"} for st in granted)


def test_journey_actions_reach_identity_and_notify_through_the_bus(resources: dict[str, Any]) -> None:
    rules = {
        k: v["Properties"]["EventPattern"] for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"
    }
    assert "huiliu.journeys" in rules["IngestedToIdentityRule"]["source"]
    # send requests travel on the bus topic: one filtered subscription per channel queue
    requested = [
        v["Properties"]["FilterPolicy"]
        for v in resources.values()
        if v["Type"] == "AWS::SNS::Subscription"
        and v["Properties"]["FilterPolicy"].get("detail_type") == ["notification.requested"]
    ]
    assert sorted(p["channel"][0] for p in requested) == ["email", "sms", "webhook", "wechat"]
