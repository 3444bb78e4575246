"""The stage runner: typed parsing, skip of foreign types, in-container dedupe, DLQ-bound bad records,
publishing what the service returns, and ticks that take their time from the schedule's input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from huiliu import stage
from huiliu.bus import MemoryPublisher
from huiliu.contracts import NotificationRequested, ProfileChanged, SegmentEntered, derive_event_id

from tests.lambda_support import LambdaContext, sqs_record

ROOT = Path(__file__).resolve().parents[3]


CTX = LambdaContext(function_name="test-stage")


class _Recorder:
    accepts = (ProfileChanged,)

    def __init__(self) -> None:
        self.seen: list[ProfileChanged] = []
        self.ticks: list[datetime] = []

    def handle(self, event: ProfileChanged) -> list[Any]:
        self.seen.append(event)
        return [
            SegmentEntered(
                event_id=derive_event_id(event.event_id, "vip"),
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                occurred_at=event.occurred_at,
                segment_id="vip",
                profile_id=event.profile_id,
                profile_version=event.version,
                reason="conditions",
            )
        ]

    def tick(self, now: datetime) -> list[Any]:
        self.ticks.append(now)
        return []


def _sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


@pytest.fixture
def wired() -> Iterator[tuple[Any, _Recorder, MemoryPublisher]]:
    service, publisher = _Recorder(), MemoryPublisher()
    handler = stage.queue_handler("test-stage")
    stage.configure("test-stage", service=service, publisher=publisher)
    yield handler, service, publisher
    stage.configure("test-stage")


def test_handles_accepted_contracts_and_publishes_their_out_events(wired: Any) -> None:
    handler, service, publisher = wired
    changed = _sample("identity/profile.changed.json")
    result = handler({"Records": [sqs_record(changed, "1")]}, CTX)
    assert result == {"batchItemFailures": []}
    assert [e.profile_id for e in service.seen] == [changed["detail"]["profile_id"]]
    (out,) = publisher.events
    assert out.detail_type == "segment.entered"
    assert out.source == "huiliu.segments"
    assert out.detail["event_id"] == derive_event_id(changed["detail"]["event_id"], "vip")


def test_acknowledges_types_the_stage_does_not_consume(wired: Any) -> None:
    handler, service, publisher = wired
    merged = _sample("identity/profile.merged.json")
    assert handler({"Records": [sqs_record(merged, "1")]}, CTX) == {"batchItemFailures": []}
    assert service.seen == []
    assert publisher.events == []


def test_same_event_twice_is_handled_once(wired: Any) -> None:
    handler, service, publisher = wired
    changed = _sample("identity/profile.changed.json")
    handler({"Records": [sqs_record(changed, "1"), sqs_record(changed, "2")]}, CTX)
    handler({"Records": [sqs_record(changed, "3")]}, CTX)  # a redelivery to the warm container
    assert len(service.seen) == 1
    assert len(publisher.events) == 1


def test_bad_records_fail_alone_and_name_their_reason(wired: Any, caplog: Any) -> None:
    handler, service, _ = wired
    changed = _sample("identity/profile.changed.json")
    broken = dict(changed, detail={**changed["detail"], "version": "not-a-number"})
    unknown = dict(changed, **{"detail-type": "profile.exploded"})
    records = [
        sqs_record("{not json", "a"),
        sqs_record(broken, "b"),
        sqs_record(unknown, "c"),
        sqs_record(changed, "d"),
    ]
    result = handler({"Records": records}, CTX)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == ["a", "b", "c"]
    assert len(service.seen) == 1


def test_a_failing_service_is_retried_not_remembered(wired: Any) -> None:
    handler, service, publisher = wired
    changed = _sample("identity/profile.changed.json")
    calls = {"n": 0}
    original = service.handle

    def flaky(event: Any) -> list[Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("throttled")
        return original(event)

    service.handle = flaky
    with pytest.raises(BatchProcessingError):  # every record failed: Lambda retries the batch
        handler({"Records": [sqs_record(changed, "1")]}, CTX)
    assert handler({"Records": [sqs_record(changed, "1")]}, CTX) == {"batchItemFailures": []}
    assert len(publisher.events) == 1


def test_contract_models_round_trip_through_the_bus_shape() -> None:
    sample = _sample("journeys/notification.requested.json")
    event = NotificationRequested.model_validate(sample["detail"])
    again = NotificationRequested.model_validate(event.outgoing().detail)
    assert again == event


def test_tick_takes_its_time_from_the_schedule_input() -> None:
    service = _Recorder()
    handler = stage.tick_handler("test-tick")
    stage.configure("test-tick", service=service, publisher=MemoryPublisher())
    try:
        assert handler({"time": "2026-03-04T05:06:00Z"}, CTX)["published"] == 0
        assert service.ticks == [datetime(2026, 3, 4, 5, 6, tzinfo=UTC)]
        with pytest.raises(stage.BadRecord):
            handler({}, CTX)
    finally:
        stage.configure("test-tick")


class _Echo:
    """An HTTP stage service: answers with the path it was asked for."""

    def __init__(self, name: str) -> None:
        self.name = name

    def respond(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "body": f"{self.name}:{event['rawPath']}"}


def test_http_stage_answers_through_its_injected_service_with_and_without_a_lambda_context() -> None:
    handler = stage.http_handler("test-http")
    stage.configure("test-http", service=_Echo("injected"))
    try:
        assert handler({"rawPath": "/v1/track"}, None)["body"] == "injected:/v1/track"
        assert handler({"rawPath": "/v1/batch"}, CTX)["body"] == "injected:/v1/batch"
    finally:
        stage.configure("test-http")
    with pytest.raises(RuntimeError, match="no service"):
        handler({"rawPath": "/"}, None)


def test_a_built_service_is_rebuilt_when_the_settings_change_but_an_injected_one_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huiliu.settings import get_settings

    builds: list[str] = []

    def build() -> _Echo:
        builds.append(get_settings().stage)
        return _Echo(get_settings().stage)

    state = stage.register("test-slot", build=build)
    monkeypatch.setenv("HUILIU_STAGE", "first")
    get_settings.cache_clear()
    try:
        assert state.get_service().name == "first"
        get_settings.cache_clear()  # re-read, same values (the local runtime does this): kept
        assert state.get_service().name == "first"
        monkeypatch.setenv("HUILIU_STAGE", "second")
        get_settings.cache_clear()
        assert state.get_service().name == "second"
        assert builds == ["first", "second"]
        stage.configure("test-slot", service=_Echo("mine"))
        get_settings.cache_clear()
        assert state.get_service().name == "mine"  # injected: never replaced behind the test's back
    finally:
        get_settings.cache_clear()


def test_a_stage_imported_again_shares_its_slot_so_configure_reaches_every_handler() -> None:
    first = stage.http_handler("test-twice")
    stage.configure("test-twice", service=_Echo("old"))
    second = stage.http_handler("test-twice")  # the module imported anew: a fresh container
    with pytest.raises(RuntimeError, match="no service"):
        first({"rawPath": "/"}, None)  # the slot was emptied for the new container
    stage.configure("test-twice", service=_Echo("new"))
    try:
        assert first({"rawPath": "/a"}, None)["body"] == "new:/a"
        assert second({"rawPath": "/b"}, None)["body"] == "new:/b"
        stage.reset_all()
        with pytest.raises(RuntimeError, match="no service"):
            second({"rawPath": "/"}, None)
    finally:
        stage.configure("test-twice")


def test_one_log_line_per_batch_names_every_event_its_correlation_and_profile(
    wired: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from huiliu.observability import logger

    handler, _, _ = wired
    changed = _sample("identity/profile.changed.json")
    second = dict(
        changed,
        detail={
            **changed["detail"],
            "event_id": "evt-second",
            "correlation_id": "corr-second",
            "profile_id": "p2",
        },
    )
    level = logger.log_level
    logger.setLevel("INFO")
    capsys.readouterr()
    try:
        handler({"Records": [sqs_record(changed, "1"), sqs_record(second, "2")]}, CTX)
    finally:
        logger.setLevel(level)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    info = [line for line in lines if line.get("level") == "INFO"]
    assert [line["message"] for line in info] == ["batch handled"]
    records = info[0]["records"]
    assert [r["event_id"] for r in records] == [changed["detail"]["event_id"], "evt-second"]
    assert records[1]["correlation_id"] == "corr-second"
    assert [r["profiles"] for r in records] == [[changed["detail"]["profile_id"]], ["p2"]]
    assert {tuple(r["published"]) for r in records} == {("segment.entered",)}
