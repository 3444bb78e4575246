"""The local runtime refuses what it does not model, runs each function in its own environment,
and fails at once when a port is taken."""

from __future__ import annotations

import ast
import copy
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from huiliu_infra import cfn
from huiliu_infra.local import support
from huiliu_infra.local.provision import ROOT, TEMPLATE, FunctionSpec
from huiliu_infra.local.runtime import LocalRuntime, PortInUse


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return cfn.translate(cfn.load_template(TEMPLATE), {"Stage": "dev"}, "ap-east-1")


def test_the_template_as_it_is_is_fully_modelled(translated: dict[str, Any]) -> None:
    support.check(translated)


def _first(translated: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in translated["Resources"].values() if r["Type"] == kind)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: _first(t, "AWS::Lambda::EventSourceMapping")["Properties"].update(
                FilterCriteria={"Filters": [{"Pattern": "{}"}]}
            ),
            "FilterCriteria",
        ),
        (lambda t: _first(t, "AWS::SQS::Queue")["Properties"].update(FifoQueue=True), "FifoQueue"),
        (
            lambda t: _first(t, "AWS::DynamoDB::Table")["Properties"].update(
                StreamSpecification={"StreamViewType": "NEW_IMAGE"}
            ),
            "StreamSpecification",
        ),
        (
            # on a queue target (a log-group target may transform: the catch-all copy writes ids only)
            lambda t: t["Resources"]["IngestedToIdentityRule"]["Properties"]["Targets"][0].update(
                InputTransformer={"InputTemplate": "{}"}
            ),
            "InputTransformer",
        ),
        (
            lambda t: t["Resources"].update(Stream={"Type": "AWS::Kinesis::Stream", "Properties": {}}),
            "AWS::Kinesis::Stream",
        ),
        (
            lambda t: _first(t, "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"].update(
                X={"Fn::ImportValue": "other-stack-export"}
            ),
            "Fn::ImportValue",
        ),
        (
            lambda t: _first(t, "AWS::Scheduler::Schedule")["Properties"].update(
                ScheduleExpression="cron(0 8 * * ? *)"
            ),
            "only rate()",
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(
                FilterPolicy={"locale": [{"equals-ignore-case": "ZH-cn"}]}
            ),
            "operator 'equals-ignore-case' is not modelled",
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(
                FilterPolicy={"contact_changed": [True]}
            ),
            "match value True",
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(
                FilterPolicy={"channel": ["sms", {"exists": False}]}
            ),
            '"exists": false beside other rules',
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(
                FilterPolicyScope="MessageBody"
            ),
            "scope 'MessageBody'",
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(RawMessageDelivery=False),
            "RawMessageDelivery must be true",
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(
                RedrivePolicy={"deadLetterTargetArn": "x"}
            ),
            "RedrivePolicy",
        ),
        (
            lambda t: _first(t, "AWS::SNS::Subscription")["Properties"].update(Protocol="lambda"),
            "only sqs is modelled",
        ),
        (lambda t: _first(t, "AWS::SNS::Topic")["Properties"].update(FifoTopic=True), "FifoTopic"),
    ],
)
def test_unmodelled_features_stop_start_up_with_a_clear_message(
    translated: dict[str, Any], change: Any, expected: str
) -> None:
    changed = copy.deepcopy(translated)
    change(changed)
    with pytest.raises(support.UnsupportedTemplateFeature, match=re.escape(expected)):
        support.check(changed)


def test_each_function_sees_only_its_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from huiliu.settings import get_settings

    runtime = LocalRuntime(http_port=0, aws_port=0, write_state=False, quiet=True)

    def spec(name: str, env: dict[str, str]) -> FunctionSpec:
        return FunctionSpec(name, name, f"functions/{name}", "app.handler", 3, 128, env)

    a = spec("A", {"POWERTOOLS_SERVICE_NAME": "a", "IDENTITY_TABLE": "identity-a"})
    b = spec("B", {"POWERTOOLS_SERVICE_NAME": "b", "SEGMENTS_TABLE": "segments-b"})
    runtime.deployment = type("D", (), {"functions": {"A": a, "B": b}})()  # type: ignore[assignment]
    monkeypatch.setenv("IDENTITY_TABLE", "leaked-from-the-process")
    with runtime._function_env(b):
        assert os.environ["POWERTOOLS_SERVICE_NAME"] == "b"
        assert os.environ["SEGMENTS_TABLE"] == "segments-b"
        assert "IDENTITY_TABLE" not in os.environ  # A's variable does not leak into B
        assert get_settings().identity_table == "huiliu-identity"  # B's settings: the default
    with runtime._function_env(a):
        assert "SEGMENTS_TABLE" not in os.environ
        assert get_settings().identity_table == "identity-a"
    assert os.environ["IDENTITY_TABLE"] == "leaked-from-the-process"  # restored afterwards


def _taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


def test_a_taken_port_fails_start_up_at_once() -> None:
    sock, port = _taken_port()
    try:
        runtime = LocalRuntime(http_port=0, aws_port=port, write_state=False, quiet=True)
        started = time.monotonic()
        with pytest.raises(PortInUse, match=str(port)):
            runtime.start()
        assert time.monotonic() - started < 5
    finally:
        sock.close()


def test_huiliu_local_exits_non_zero_when_its_port_is_taken() -> None:
    sock, port = _taken_port()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "huiliu_infra.cli", "local", "--port", "0", "--aws-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
    finally:
        sock.close()
    assert done.returncode == 2
    assert "already in use" in done.stderr


def test_the_demo_does_not_import_the_cli_entry_point() -> None:
    """cli imports demo (`huiliu demo`); demo runs command modules directly: no import cycle."""
    tree = ast.parse((Path(ROOT) / "infra/huiliu_infra/demo.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert "huiliu_infra.cli" not in imported


def test_batch_calls_retry_unprocessed_items_with_backoff_then_give_up() -> None:
    from huiliu.storage.dynamo import DynamoRepository, UnprocessedItems

    class Throttled:
        def __init__(self, stubborn: int) -> None:
            self.calls = 0
            self.stubborn = stubborn

        def batch_write_item(self, RequestItems: Any, **_: Any) -> dict[str, Any]:
            self.calls += 1
            return {"UnprocessedItems": RequestItems if self.calls <= self.stubborn else {}}

    import huiliu.storage.dynamo as dynamo

    original = dynamo.BATCH_BACKOFF_SECONDS
    dynamo.BATCH_BACKOFF_SECONDS = 0.0001
    try:
        client = Throttled(stubborn=3)
        DynamoRepository("t", client=client).batch_write([{"pk": "a", "sk": "b"}])
        assert client.calls == 4  # three unprocessed answers re-sent, then done
        with pytest.raises(UnprocessedItems):
            DynamoRepository("t", client=Throttled(stubborn=100)).batch_write([{"pk": "a", "sk": "b"}])
    finally:
        dynamo.BATCH_BACKOFF_SECONDS = original


def test_each_function_logs_under_its_own_service_name(capsys: pytest.CaptureFixture[str]) -> None:
    from huiliu.observability import logger

    runtime = LocalRuntime(http_port=0, aws_port=0, write_state=False, quiet=True)
    a = FunctionSpec("A", "A", "functions/a", "app.handler", 3, 128, {"POWERTOOLS_SERVICE_NAME": "identity"})
    b = FunctionSpec("B", "B", "functions/b", "app.handler", 3, 128, {"POWERTOOLS_SERVICE_NAME": "notify"})
    runtime.deployment = type("D", (), {"functions": {"A": a, "B": b}})()  # type: ignore[assignment]
    for spec in (a, b):
        with runtime._function_env(spec):
            logger.clear_state()  # what inject_lambda_context(clear_state=True) does per invocation
            logger.info("hello")
    lines = [line for line in capsys.readouterr().out.splitlines() if '"hello"' in line]
    assert ['"service":"identity"' in lines[0], '"service":"notify"' in lines[1]] == [True, True]
