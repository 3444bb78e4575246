"""One send per idempotency key, however often SQS redelivers and wherever a provider fails."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from huiliu.contracts import NotificationFailed, NotificationSent
from huiliu.notify.models import State
from huiliu.notify.service import InFlight

from tests.functions.notify.notify_helpers import TENANT, Stage, request


class _FlakySes:
    """SES that sometimes throttles (not sent) and sometimes times out after accepting (sent)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def patch(self, service: Any) -> None:
        sender = service.senders["email"]
        real = sender.client

        def flaky() -> Any:
            inner = real()
            rng = self.rng

            class Client:
                def send_email(self, **kwargs: Any) -> Any:
                    roll = rng.random()
                    if roll < 0.25:
                        raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, "SendEmail")
                    reply = inner.send_email(**kwargs)
                    if roll < 0.5:
                        raise ReadTimeoutError(endpoint_url="https://email.example")
                    return reply

            return Client()

        sender.client = flaky


def _deliver(stage: Stage, req: object, redeliveries: int = 3, senders_patch: Any = None) -> list[object]:
    """Deliver a request like SQS would: again after an error, and sometimes again after success."""
    events: list[object] = []
    for _ in range(redeliveries + 1):
        try:
            service = stage.service()
            if senders_patch:
                senders_patch(service)
            events += service.handle(req)  # type: ignore[arg-type]
        except InFlight:
            stage.clock.advance(timedelta(minutes=3))  # the visibility timeout passes
        except RuntimeError:
            stage.clock.advance(timedelta(minutes=3))
    for due in stage.requeue.due(stage.clock.now() + timedelta(hours=1)):  # retries with backoff
        stage.clock.advance(timedelta(minutes=16))
        events += _deliver(stage, due, redeliveries=1, senders_patch=senders_patch)
    return events


def test_transient_webhook_failures_are_retried_and_the_receiver_sees_one_message_id(stage: Stage) -> None:
    stage.service().handle(stage.profile())
    stage.fake.fail_next("/webhook/", times=2, status=503)  # 5xx: may have been taken; webhook-id dedupes
    events = _deliver(
        stage, request("hook-1", channel="webhook", template_id="crm-push", purpose="transactional")
    )
    ids = {r.headers["webhook-id"] for r in stage.fake.of_kind("webhook")}
    assert len(ids) == 1
    sent = [e for e in events if isinstance(e, NotificationSent)]
    assert sent  # redeliveries replay the outcome with the same event id
    assert len({e.event_id for e in sent}) == 1


def test_a_crash_between_the_provider_call_and_the_log_write_never_sends_a_second_mail(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = stage.service()
    service.handle(stage.profile(email="crash@example.com"))
    crashing = stage.service()
    real_finish = crashing.repo.finish

    def crash(*args: object, **kwargs: object) -> object:
        raise RuntimeError("Lambda timed out after SES accepted the mail")

    monkeypatch.setattr(crashing.repo, "finish", crash)
    req = request("crash-1")
    with pytest.raises(RuntimeError):
        crashing.handle(req)
    monkeypatch.setattr(crashing.repo, "finish", real_finish)

    with pytest.raises(InFlight):  # redelivered while the claim's lease still runs
        stage.service().handle(req)
    stage.clock.advance(timedelta(minutes=3))
    out = stage.service().handle(req)  # the lease ran out: SES cannot dedupe, so no resend

    sent = [m for m in stage.ses_sent() if "crash@example.com" in m.destinations]
    assert len(sent) == 1
    assert [type(e) for e in out] == [NotificationFailed]
    assert out[0].reason == "unknown_outcome"
    again = stage.service().handle(req)
    assert [e.event_id for e in again] == [e.event_id for e in out]


def test_a_crash_after_a_wechat_send_resends_with_the_same_client_msg_id_and_wechat_dedupes(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage.service().handle(stage.profile(openid="o-crash"))
    crashing = stage.service()
    monkeypatch.setattr(crashing.repo, "finish", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    req = request("wx-crash", channel="wechat", template_id="shipped", purpose="transactional")
    with pytest.raises(RuntimeError):
        crashing.handle(req)
    stage.clock.advance(timedelta(minutes=3))
    out = stage.service().handle(req)
    assert [type(e) for e in out] == [NotificationSent]
    assert len([r for r in stage.fake.of_kind("wechat-template") if r.to == "o-crash"]) == 1


@pytest.mark.parametrize("seed", range(6))
def test_random_provider_faults_and_redeliveries_never_send_a_key_twice(stage: Stage, seed: int) -> None:
    rng = random.Random(seed)
    address = f"faults-{seed}@example.com"
    stage.service().handle(stage.profile(email=address, phone="+8613900000000", openid="o-faults"))
    stage.tenant_settings.frequency_caps = []
    plans = []
    for n in range(8):
        channel = rng.choice(["email", "wechat", "webhook", "sms"])
        template = {"email": "receipt", "wechat": "shipped", "webhook": "crm-push", "sms": "otp"}[channel]
        if rng.random() < 0.5:
            prefix = {"wechat": "/wechat/cgi-bin/message", "webhook": "/webhook/", "sms": "/aliyun"}.get(
                channel
            )
            if prefix:
                stage.fake.fail_next(
                    prefix,
                    times=rng.randint(1, 2),
                    status=rng.choice([200, 429, 503]),
                    reply={"errcode": -1, "Code": "Throttling.User"},
                )
        plans.append(request(f"f{seed}-{n}", channel=channel, template_id=template, purpose="transactional"))
    if seed % 2:
        stage.tenant_settings.notify.sms_provider = "aliyun"
    flaky = _FlakySes(rng)
    for req in plans:
        _deliver(stage, req, redeliveries=rng.randint(1, 3), senders_patch=flaky.patch)

    repo = stage.repo()
    for req in plans:
        record = repo.record(TENANT, "p1", req.idempotency_key)
        assert record is not None
        assert record.state in (State.SENT, State.FAILED, State.RETRY), record
    sent_mail = [m for m in stage.ses_sent() if address in m.destinations]
    wechat = [r.body["client_msg_id"] for r in stage.fake.of_kind("wechat-template") if r.to == "o-faults"]
    hooks = [r.headers["webhook-id"] for r in stage.fake.of_kind("webhook")]
    aliyun = [r.body["OutId"] for r in stage.fake.of_kind("aliyun-sms")]
    for delivered in (wechat, hooks, aliyun):
        assert len(delivered) == len(set(delivered)), delivered
    emails = [p for p in plans if p.channel == "email"]
    assert len(sent_mail) <= len(emails)
