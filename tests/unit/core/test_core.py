"""The shared core: AWS client factory, clocks, identifiers, canonical event, bus publisher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber
from huiliu import aws
from huiliu.bus import MAX_TRIES, EventBridgePublisher, OutgoingEvent
from huiliu.clock import ManualClock, OffsetClock, parse_duration
from huiliu.errors import PublishFailed
from huiliu.identifiers import InvalidIdentifier, normalize, normalize_phone
from huiliu.models import CanonicalEvent, Source, build_identifiers
from hypothesis import given
from hypothesis import strategies as st


def test_endpoint_precedence_service_then_general_then_localstack(monkeypatch: pytest.MonkeyPatch) -> None:
    assert aws.endpoint_for("dynamodb") is None
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", "http://ls:4566")
    assert aws.endpoint_for("sqs") == "http://ls:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://moto:5000")
    assert aws.endpoint_for("sqs") == "http://moto:5000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb:4567")
    assert aws.endpoint_for("dynamodb") == "http://ddb:4567"
    assert aws.endpoint_for("sqs") == "http://moto:5000"


def test_localstack_hostname_is_honoured_inside_localstack_lambdas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALSTACK_HOSTNAME", "localstack.internal")
    monkeypatch.setenv("EDGE_PORT", "4566")
    assert "4566" in str(aws.endpoint_for("events"))


def test_clients_are_built_once_per_service_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    first = aws.client("sqs")
    assert aws.client("sqs") is first
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    other = aws.client("sqs")
    assert other is not first
    assert other.meta.endpoint_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("3h", 10800), ("2d", 172800), ("1d12h", 129600)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "3", "d", "3x", "-1d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_offset_clock_only_moves_forward() -> None:
    clock = OffsetClock()
    before = clock.now()
    clock.advance(timedelta(days=3))
    assert clock.now() - before >= timedelta(days=3)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))


def test_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(hours=1)) == datetime(2026, 1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["+86 138-0013-8000", "13800138000", "008613800138000", "+86 (138) 0013 8000"]
)
def test_one_chinese_mobile_typed_four_ways_is_one_e164_number(raw: str) -> None:
    assert normalize_phone(raw, "CN") == "+8613800138000"


def test_default_region_decides_national_numbers() -> None:
    assert normalize_phone("(415) 555-2671", "US") == "+14155552671"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+86 000"])
def test_invalid_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_phone(raw, "CN")


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert normalize("email", "  Mei.Lin@Example.COM ") == "mei.lin@example.com"
    with pytest.raises(InvalidIdentifier):
        normalize("email", "not-an-email")


def test_build_identifiers_normalises_drops_invalid_and_dedupes() -> None:
    idents = build_identifiers(
        [
            ("phone", "13800138000"),
            ("phone", "+86 138 0013 8000"),
            ("email", "bad"),
            ("user_id", 42),
            ("Bad Type", "x"),
        ]
    )
    assert [(i.type, i.value) for i in idents] == [("phone", "+8613800138000"), ("user_id", "42")]


@given(st.text(max_size=40), st.sampled_from(["email", "phone", "user_id", "wechat_openid"]))
def test_normalise_never_raises_anything_but_invalid_identifier(value: str, kind: str) -> None:
    try:
        result = normalize(kind, value)
    except InvalidIdentifier:
        return
    assert result == result.strip()
    assert result


def test_canonical_event_makes_naive_times_utc_and_keys_dedupe_on_tenant_connector_message() -> None:
    event = CanonicalEvent(
        tenant_id="demo",
        message_id="m1",
        type="track",
        event="Signed Up",
        timestamp=datetime(2026, 1, 1),
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=Source(connector="segment"),
    )
    assert event.timestamp.tzinfo is UTC
    assert event.dedupe_key == "demo#segment#m1"


def test_canonical_event_rejects_bad_tenant_ids() -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        CanonicalEvent(
            tenant_id="../etc",
            message_id="m1",
            type="track",
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            received_at=datetime(2026, 1, 1, tzinfo=UTC),
            source=Source(connector="segment"),
        )


def test_publisher_sends_chunks_of_ten() -> None:
    client = aws.client("events")
    publisher = EventBridgePublisher("bus", client=client)
    events = [OutgoingEvent("huiliu.test", "t", {"i": i}) for i in range(25)]
    with Stubber(client) as stub:
        for size in (10, 10, 5):
            stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * size})
        assert publisher.publish(events) == 3
        stub.assert_no_pending_responses()


def test_publisher_raises_when_eventbridge_keeps_rejecting_an_entry() -> None:
    client = aws.client("events")
    publisher = EventBridgePublisher("bus", client=client)
    with Stubber(client) as stub:
        for _ in range(MAX_TRIES):
            stub.add_response(
                "put_events",
                {
                    "FailedEntryCount": 1,
                    "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}],
                },
            )
        with pytest.raises(PublishFailed):
            publisher.publish([OutgoingEvent("huiliu.test", "t", {})])
        stub.assert_no_pending_responses()
