"""Email through SES v2 (as moto records it): headers, configuration set, the send log, and the
DynamoDB call budget of the happy path."""

from __future__ import annotations

import email

from huiliu.contracts import NotificationSent
from huiliu.notify.models import State

from tests.functions.notify.notify_helpers import TENANT, Stage, request


def _mails_to(stage: Stage, address: str) -> list[email.message.Message]:
    return [
        email.message_from_string(m.raw_data)
        for m in stage.ses_sent()
        if hasattr(m, "raw_data") and address in m.destinations
    ]


def test_a_marketing_mail_to_a_consenting_person_goes_through_ses_once_with_one_click_unsubscribe(
    stage: Stage,
) -> None:
    service = stage.service()
    service.handle(stage.profile(email="first@example.com"))
    before = stage.stats.by_op.copy()

    out = service.handle(request("welcome-1", locale="en"))

    assert [type(e) for e in out] == [NotificationSent]
    assert out[0].provider == "ses"
    assert out[0].provider_id
    calls = sum(stage.stats.by_op.values()) - sum(before.values())
    assert calls == 3, stage.stats.by_op  # BatchGetItem, TransactWriteItems, UpdateItem
    (mail,) = _mails_to(stage, "first@example.com")
    assert mail["Subject"] == "Welcome, Li Lei"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].startswith("<https://api.example/v1/unsubscribe/acme?t=")
    record = stage.repo().record(TENANT, "p1", "welcome-1")
    assert record is not None
    assert record.state == State.SENT
    assert record.to == "first@example.com"


def test_given_the_same_request_delivered_again_then_it_is_not_sent_twice_and_the_same_event_is_replayed(
    stage: Stage,
) -> None:
    service = stage.service()
    service.handle(stage.profile(email="twice@example.com"))
    first = service.handle(request("welcome-2"))
    again = stage.service().handle(request("welcome-2"))  # another container, a redelivery

    assert len(_mails_to(stage, "twice@example.com")) == 1
    assert [e.event_id for e in again] == [e.event_id for e in first]


def test_given_no_locale_then_the_tenant_default_zh_cn_renders(stage: Stage) -> None:
    service = stage.service()
    service.handle(stage.profile(email="zh@example.com"))
    service.handle(request())
    (mail,) = _mails_to(stage, "zh@example.com")
    assert str(email.header.make_header(email.header.decode_header(mail["Subject"]))) == "欢迎, Li Lei"
