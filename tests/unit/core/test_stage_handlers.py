"""The wired-but-not-yet-built stages acknowledge good records and fail only bad ones."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from huiliu_infra.local.provision import ROOT


class _Ctx:
    function_name = "stage"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:ap-east-1:123456789012:function:stage"
    aws_request_id = "r1"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / f"functions/{name}/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "rh",
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:ap-east-1:123456789012:q",
        "awsRegion": "ap-east-1",
    }


GOOD = json.dumps(
    {
        "source": "huiliu.identity",
        "detail-type": "profile.changed",
        "detail": {"tenant_id": "demo", "correlation_id": "c1"},
    }
)


@pytest.mark.parametrize("name", ["feedback"])
def test_queue_stage_reports_only_the_bad_record_as_failed(name: str) -> None:
    module = _load(name)
    result = module.handler({"Records": [_record("ok", GOOD), _record("bad", "not json")]}, _Ctx())
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
