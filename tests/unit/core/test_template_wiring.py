"""template.yaml is the one source of wiring: these invariants hold for every consumer."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from huiliu_infra import cfn
from huiliu_infra.local.provision import ROOT, TEMPLATE, rate_seconds


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")


def _of_type(translated: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in translated["Resources"].items() if v["Type"] == kind}


def test_every_function_points_at_a_handler_that_exists(translated: dict[str, Any]) -> None:
    functions = _of_type(translated, "AWS::Lambda::Function")
    assert len(functions) >= 10  # every stage, plus its ticks
    for logical, res in functions.items():
        module, func = res["Properties"]["Handler"].rsplit(".", 1)
        path = ROOT / cfn.code_path(res["Properties"]["Code"]) / f"{module}.py"
        assert path.exists(), f"{logical}: {path} missing"
        tree = ast.parse(path.read_text()).body
        names = {n.name for n in tree if isinstance(n, ast.FunctionDef)} | {
            t.id for n in tree if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert func in names, f"{logical}: {path} has no {func}()"


def test_every_function_runs_python312_on_arm64_with_tracing(translated: dict[str, Any]) -> None:
    for logical, res in _of_type(translated, "AWS::Lambda::Function").items():
        props = res["Properties"]
        assert props["Runtime"] == "python3.12", logical
        assert props["Architectures"] == ["arm64"], logical
        assert props["TracingConfig"] == {"Mode": "Active"}, logical
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"], logical


def test_every_queue_consumer_reports_partial_failures_and_has_a_dlq(translated: dict[str, Any]) -> None:
    queues = _of_type(translated, "AWS::SQS::Queue")
    functions = _of_type(translated, "AWS::Lambda::Function")
    mappings = _of_type(translated, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) >= 6
    for logical, res in mappings.items():
        props = res["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], logical
        queue = queues[props["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3, logical
        function = functions[props["FunctionName"]["Ref"]]["Properties"]
        # AWS guidance: visibility timeout at least six times the function timeout.
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"], logical


def test_every_table_is_on_demand_encrypted_and_recoverable(translated: dict[str, Any]) -> None:
    tables = _of_type(translated, "AWS::DynamoDB::Table")
    assert len(tables) == 7
    for logical, res in tables.items():
        props = res["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical
        assert props["SSESpecification"] == {"SSEEnabled": True}, logical
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical


def test_no_function_gets_wildcard_access(translated: dict[str, Any]) -> None:
    for logical, res in _of_type(translated, "AWS::IAM::Role").items():
        for policy in res["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert not any(a == "*" or a.endswith(":*") for a in actions), (logical, actions)
        managed = res["Properties"].get("ManagedPolicyArns", [])
        assert not any("FullAccess" in str(arn) for arn in managed), logical


def test_schedules_are_rates_the_local_runtime_can_tick(translated: dict[str, Any]) -> None:
    schedules = _of_type(translated, "AWS::Scheduler::Schedule")
    # the local runtime ticks in steps of at most an hour: every rate fits in one
    rates = {rate_seconds(s["Properties"]["ScheduleExpression"]) for s in schedules.values()}
    assert rates
    assert all(60 <= r <= 3600 for r in rates)


def test_every_resource_has_a_comment_saying_why_it_exists() -> None:
    lines = Path(TEMPLATE).read_text().splitlines()
    start = lines.index("Resources:")
    end = lines.index("Outputs:")
    for i in range(start + 1, end):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            assert lines[i - 1].strip().startswith("#"), f"resource {line.strip()} has no why-comment"


def test_every_stage_that_keeps_personal_data_hears_of_an_erasure() -> None:
    # Memberships (segments), enrollments (journeys) and the send log (notify) are erased by their
    # owners when identity emits profile.erased (on whichever wire huiliu.bus routes it).
    from huiliu.contracts import ProfileErased

    from benchmarks.meter import queues_reached

    erased = ProfileErased(event_id="e", tenant_id="t", occurred_at="2026-11-27T00:00:00Z", profile_id="p")
    hearing = queues_reached(cfn.load_template(TEMPLATE), erased.outgoing())
    assert {"SegmentsQueue", "JourneysQueue", "NotifyQueue"} <= hearing


def test_notify_reads_no_other_stages_table_and_each_channel_has_its_own_queue(
    translated: dict[str, Any],
) -> None:
    # Notify keeps its own contact projection from profile events (DESIGN §8): its role names
    # MessagesTable (read-write) and TenantsTable (read) only.
    policies = translated["Resources"]["NotifyFunctionRole"]["Properties"]["Policies"]
    text = str(policies)
    for other in ("IdentityTable", "SegmentsTable", "JourneysTable", "IdempotencyTable"):
        assert other not in text, other
    assert "MessagesTable" in text
    mappings = [
        r["Properties"]
        for r in _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if r["Properties"]["FunctionName"] == {"Ref": "NotifyFunction"}
    ]
    queues = {m["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings}
    assert queues == {
        "NotifyQueue",
        "NotifyEmailQueue",
        "NotifySmsQueue",
        "NotifyWechatQueue",
        "NotifyWebhookQueue",
    }
    assert all(
        "MaximumConcurrency" in m["ScalingConfig"]
        for m in mappings
        if m["EventSourceArn"]["Fn::GetAtt"][0] != "NotifyQueue"
    )
