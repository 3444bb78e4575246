"""Quiet hours across midnight in Asia/Shanghai, caps under concurrency, erasure — through the service."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from huiliu.contracts import NotificationDeferred, NotificationSent, NotificationSuppressed, ProfileErased
from huiliu.notify.models import State
from huiliu.notify.repository import profile_pk
from huiliu.tenants import FrequencyCap

from tests.functions.notify.notify_helpers import TENANT, Stage, request


def test_quiet_hours_defer_across_midnight_in_shanghai_and_the_message_goes_at_eight(stage: Stage) -> None:
    stage.service().handle(stage.profile(email="night@example.com"))
    stage.clock.set(datetime(2026, 3, 1, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai

    out = stage.service().handle(request("night-1"))

    assert [type(e) for e in out] == [NotificationDeferred]
    assert out[0].reason == "quiet_hours"
    assert out[0].until == "2026-03-02T00:00:00+00:00"  # 08:00 Shanghai, the next day
    assert stage.requeue.due(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == []  # not before the end
    stage.clock.set(datetime(2026, 3, 1, 18, 0, tzinfo=UTC))  # 02:00: an early redelivery changes nothing
    assert stage.service().handle(request("night-1")) == []
    stage.clock.set(datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    (again,) = stage.requeue.due(stage.clock.now())
    sent = stage.service().handle(again)
    assert [type(e) for e in sent] == [NotificationSent]
    assert len([m for m in stage.ses_sent() if "night@example.com" in m.destinations]) == 1


def test_the_persons_own_time_zone_decides_quiet_hours(stage: Stage) -> None:
    stage.service().handle(stage.profile(email="berlin@example.com", timezone="Europe/Berlin"))
    stage.clock.set(datetime(2026, 3, 1, 15, 30, tzinfo=UTC))  # 23:30 Shanghai, 16:30 Berlin
    assert [type(e) for e in stage.service().handle(request("tz-1"))] == [NotificationSent]


def test_transactional_mail_ignores_quiet_hours_unless_the_tenant_says_otherwise(stage: Stage) -> None:
    stage.service().handle(stage.profile(email="otp@example.com"))
    stage.clock.set(datetime(2026, 3, 1, 15, 30, tzinfo=UTC))
    receipt = request("r-night", template_id="receipt", purpose="transactional")
    assert [type(e) for e in stage.service().handle(receipt)] == [NotificationSent]
    stage.tenant_settings.notify.quiet_hours_transactional = True
    later = request("r-night-2", template_id="receipt", purpose="transactional")
    assert [type(e) for e in stage.service().handle(later)] == [NotificationDeferred]


def _race(stage: Stage, requests: list[Any]) -> list[Any]:
    """Each request in its own thread and container; all read the cap window before any claims it."""
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def worker(n: int) -> None:
        service = stage.service()
        real_load = service.repo.load

        def load(*args: Any, **kwargs: Any) -> Any:
            loaded = real_load(*args, **kwargs)
            barrier.wait(timeout=30)
            return loaded

        service.repo.load = load  # type: ignore[method-assign]
        try:
            results[n] = service.handle(requests[n])
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_concurrent_sends_at_the_cap_leave_exactly_the_cap(stage: Stage) -> None:
    stage.tenant_settings.frequency_caps = [FrequencyCap(limit=3, days=7)]
    stage.service().handle(stage.profile(email="cap@example.com"))
    for n in range(2):
        stage.service().handle(request(f"cap-{n}"))
        stage.clock.advance(timedelta(hours=1))

    results = _race(stage, [request("cap-a"), request("cap-b")])

    kinds = sorted(type(r[0]).__name__ for r in results)
    assert kinds == ["NotificationDeferred", "NotificationSent"], results
    assert len([m for m in stage.ses_sent() if "cap@example.com" in m.destinations]) == 3
    cap = stage.repo().cap(TENANT, "p1", "email")
    assert len(cap.sends) == 3
    deferred = next(r[0] for r in results if isinstance(r[0], NotificationDeferred))
    assert deferred.reason == "frequency_cap:3/7d"
    assert deferred.until == (datetime(2026, 3, 2, 2, 0, 1, tzinfo=UTC) + timedelta(days=7)).isoformat()


def test_an_important_message_wins_the_last_slot_even_when_it_asks_second(stage: Stage) -> None:
    stage.tenant_settings.frequency_caps = [FrequencyCap(limit=3, days=7, reserved=1, high_priority=50)]
    stage.service().handle(stage.profile(email="vip@example.com"))
    for n in range(2):
        stage.service().handle(request(f"vip-{n}"))
    ordinary = stage.service().handle(request("promo", priority=10))
    important = stage.service().handle(request("cart-reminder", priority=80))
    assert [type(e) for e in ordinary] == [NotificationDeferred]
    assert [type(e) for e in important] == [NotificationSent]


def test_over_the_cap_is_dropped_with_its_reason_when_the_tenant_drops(stage: Stage) -> None:
    stage.tenant_settings.frequency_caps = [FrequencyCap(limit=1, days=7)]
    stage.tenant_settings.over_cap = "drop"
    stage.service().handle(stage.profile(email="drop@example.com"))
    stage.service().handle(request("d-1"))
    (out,) = stage.service().handle(request("d-2"))
    assert isinstance(out, NotificationSuppressed)
    assert out.reason == "dropped:frequency_cap:1/7d"


def test_erasure_removes_the_contact_and_the_send_logs_personal_fields(stage: Stage) -> None:
    service = stage.service()
    service.handle(stage.profile(email="erase@example.com"))
    service.handle(request("e-1"))
    service.handle(
        ProfileErased(
            event_id="x1",
            tenant_id=TENANT,
            occurred_at="2026-03-02T03:00:00+00:00",
            profile_id="p1",
            profile_ids=["p1"],
        )
    )
    repo = stage.repo()
    assert repo.contact(TENANT, "p1") is None
    items = list(repo.query_all(profile_pk(TENANT, "p1"), consistent=True))
    assert [i["sk"] for i in items] == ["MSG#e-1"]
    assert "to" not in items[0]
    assert items[0]["erased"] is True
    assert items[0]["state"] == State.SENT.value  # the outcome stays (counts, funnels), the person does not
    assert "erase@example.com" not in str(items)


def test_no_phone_falls_back_to_email_with_the_templates_email_version(stage: Stage) -> None:
    from huiliu.contracts import NotificationRequested
    from huiliu.notify.template_store import TemplateRepository
    from huiliu.notify.templates import Template

    from tests.functions.notify.notify_helpers import client

    TemplateRepository(stage.tenants_table, client=client(stage.endpoint, "dynamodb")).save_template(
        TENANT,
        Template.model_validate(
            {
                "template_id": "otp.email",
                "channel": "email",
                "purpose": "transactional",
                "locales": {"zh-CN": {"subject": "验证码", "text": "{{ code }}"}},
                "sample": {"vars": {"code": "1"}},
            }
        ),
    )
    stage.service().handle(stage.profile(email="fallback@example.com", phone=None))
    out = stage.service().handle(
        request("fb-1", channel="sms", template_id="otp", purpose="transactional", fallback=["email"])
    )
    suppressed, again = out
    assert isinstance(suppressed, NotificationSuppressed)
    assert suppressed.reason == "no_sms_address"
    assert (again.source, again.detail["channel"], again.detail["idempotency_key"]) == (
        "huiliu.notify",
        "email",
        "fb-1~email",
    )
    sent = stage.service().handle(NotificationRequested.model_validate(again.detail))
    assert [type(e) for e in sent] == [NotificationSent]
    assert len([m for m in stage.ses_sent() if "fallback@example.com" in m.destinations]) == 1


def test_a_marketing_template_needs_consent_even_when_requested_as_transactional(stage: Stage) -> None:
    stage.service().handle(stage.profile(email="noconsent@example.com", consent={}))
    (out,) = stage.service().handle(request("sneaky", template_id="welcome", purpose="transactional"))
    assert isinstance(out, NotificationSuppressed)
    assert out.reason == "no_consent:email"
    assert out.purpose == "marketing"
