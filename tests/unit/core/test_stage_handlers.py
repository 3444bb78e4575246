"""The wired-but-not-yet-built stages acknowledge good records and fail only bad ones."""

from __future__ import annotations

import json

import pytest

from tests.lambda_support import LambdaContext, load_function_fresh, sqs_record

GOOD = json.dumps(
    {
        "source": "huiliu.identity",
        "detail-type": "profile.changed",
        "detail": {"tenant_id": "demo", "correlation_id": "c1"},
    }
)


@pytest.mark.parametrize("name", ["feedback"])
def test_queue_stage_reports_only_the_bad_record_as_failed(name: str) -> None:
    module = load_function_fresh(name)
    records = [sqs_record(GOOD, "ok"), sqs_record("not json", "bad")]
    result = module.handler(
        {"Records": records}, LambdaContext(function_name="stage", memory_limit_in_mb=128)
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
