"""The journeys and journey-tick Lambda handlers: SQS batches with partial failures, the tick's
time taken from the schedule's input."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from typing import Any

import pytest
from huiliu import stage
from huiliu.journeys.service import JourneyTickService
from huiliu_infra.local.provision import ROOT

from tests.functions.journeys.engine_helpers import Engine, make_engine, profile_changed
from tests.unit.journeys.journey_helpers import T0


class _Ctx:
    function_name = "journeys"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:ap-east-1:123456789012:function:journeys"
    aws_request_id = "r1"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"journeys_fn_{name}", ROOT / f"functions/{name}/app.py")
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


def _envelope(detail_type: str, detail: dict[str, Any]) -> str:
    return json.dumps({"source": "huiliu.identity", "detail-type": detail_type, "detail": detail})


@pytest.fixture
def engine(deployed: Any) -> Engine:
    return make_engine(deployed.tables["JourneysTable"])


def test_a_batch_enrolls_from_good_records_and_fails_only_the_bad_one(engine: Engine) -> None:
    app = _load("journeys")
    stage.configure("journeys", service=engine.service, publisher=engine.bus)
    good = _envelope("profile.changed", profile_changed("p-300001", 1, event="Signed Up", created=True))
    not_ours = json.dumps(
        {
            "source": "huiliu.notify",
            "detail-type": "notification.sent",
            "detail": {
                "event_id": "n1",
                "tenant_id": "acme",
                "occurred_at": "2026-01-01T00:00:00Z",
                "idempotency_key": "k",
                "profile_id": "p",
                "channel": "sms",
            },
        }
    )
    result = app.handler(
        {"Records": [_record("ok", good), _record("skip", not_ours), _record("bad", "not json")]}, _Ctx()
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert engine.repo.enrollments_of("acme", "p-300001")[0].step_id == "wait-3d"
    stage.configure("journeys")


def test_the_tick_steps_what_is_due_at_the_schedules_time_not_the_wall_clock(engine: Engine) -> None:
    engine.send("profile.changed", profile_changed("p-300002", 1, event="Signed Up", created=True))
    tick = _load("journey_tick")
    service = JourneyTickService(engine.ticker)
    stage.configure("journey_tick", service=service, publisher=engine.bus)
    early = (T0 + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tick.handler({"time": early}, _Ctx())
    assert service.last is not None
    assert service.last.stepped == 0
    due = (T0 + timedelta(days=3, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tick.handler({"time": due}, _Ctx())
    assert (service.last.due, service.last.stepped, service.last.actions) == (1, 1, 2)
    assert len(engine.requested()) == 1
    stage.configure("journey_tick")
