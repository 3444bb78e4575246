"""WeChat (shared token, refreshed once), Standard Webhooks signatures, SMS through SNS and Aliyun."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from huiliu.contracts import NotificationFailed, NotificationSent
from huiliu.notify.repository import DynamoTokenStore
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.functions.notify.notify_helpers import Stage, client, request


def _wechat(key: str, **kw: Any) -> Any:
    return request(key, channel="wechat", template_id="shipped", purpose="transactional", **kw)


def test_a_wechat_template_message_goes_out_with_the_shared_token(stage: Stage) -> None:
    stage.service().handle(stage.profile(openid="o-one"))
    out = stage.service().handle(_wechat("wx-1"))
    assert [type(e) for e in out] == [NotificationSent]
    (sent,) = [r for r in stage.fake.of_kind("wechat-template") if r.to == "o-one"]
    assert sent.body["template_id"] == "TPL-SHIP"
    assert sent.body["data"] == {"keyword1": {"value": "A1"}, "keyword2": {"value": "已发货"}}
    stage.service().handle(_wechat("wx-2"))  # another container: the token comes from DynamoDB
    assert stage.fake.token_calls == 1


def test_an_expired_token_is_refreshed_once_for_many_concurrent_sends(stage: Stage) -> None:
    stage.service().handle(stage.profile(openid="o-many"))
    stage.service().handle(_wechat("warm"))  # token 1 fetched and stored
    stage.fake.expire_tokens()  # WeChat now answers 42001 for it (our copy still looks fresh)
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers

    def worker(n: int) -> None:
        store = DynamoTokenStore(stage.table, client=client(stage.endpoint, "dynamodb"))
        service = stage.service(token_store=store)  # one container each: own memory, shared table
        barrier.wait(timeout=30)
        try:
            results[n] = service.handle(_wechat(f"burst-{n}"))
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, list) and isinstance(r[0], NotificationSent) for r in results), results
    assert stage.fake.token_calls == 2  # the first fetch, and exactly one refresh
    assert len([r for r in stage.fake.of_kind("wechat-template") if r.to == "o-many"]) == workers + 1


def test_user_not_subscribed_is_an_outcome_not_a_retry(stage: Stage) -> None:
    stage.service().handle(stage.profile(openid="o-gone"))
    stage.fake.fail_next("/wechat/cgi-bin/message", reply={"errcode": 43004, "errmsg": "require subscribe"})
    (out,) = stage.service().handle(_wechat("wx-gone"))
    assert isinstance(out, NotificationFailed)
    assert out.reason == "user_not_subscribed"
    assert stage.requeue.items == []


def test_a_wechat_quota_error_defers_to_midnight_in_shanghai(stage: Stage) -> None:
    stage.service().handle(stage.profile(openid="o-quota"))
    stage.fake.fail_next(
        "/wechat/cgi-bin/message", reply={"errcode": 45009, "errmsg": "reach max api daily quota"}
    )
    (out,) = stage.service().handle(_wechat("wx-quota"))
    assert out.DETAIL_TYPE == "notification.deferred"
    assert out.until == "2026-03-02T16:00:00+00:00"  # 00:00 on 3 March in Shanghai
    assert out.reason == "quota:wechat_45009"


def test_marketing_through_a_wechat_template_message_is_refused(stage: Stage) -> None:
    stage.service().handle(stage.profile(openid="o-mkt"))
    (out,) = stage.service().handle(
        request("wx-mkt", channel="wechat", template_id="shipped", purpose="marketing")
    )
    assert isinstance(out, NotificationFailed)
    assert out.reason == "template_transactional_only"
    assert stage.fake.of_kind("wechat-template") == []


def test_a_webhook_signature_verifies_with_the_standardwebhooks_library(stage: Stage) -> None:
    stage.clock.set(datetime.now(UTC))  # the library checks the timestamp against the wall clock
    stage.service().handle(stage.profile())
    out = stage.service().handle(
        request("hook-sig", channel="webhook", template_id="crm-push", purpose="transactional")
    )
    assert [type(e) for e in out] == [NotificationSent]
    (hook,) = stage.fake.of_kind("webhook")
    body = json.dumps(hook.body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    verified = Webhook(stage.whsec).verify(body, hook.headers)
    assert verified["data"]["name"] == "Li Lei"
    assert hook.headers["webhook-id"] == out[0].provider_id
    tampered = body.replace("Li Lei", "Mallory")
    with pytest.raises(WebhookVerificationError):
        Webhook(stage.whsec).verify(tampered, hook.headers)


def test_sms_goes_through_sns_or_aliyun_as_the_tenant_chooses(stage: Stage) -> None:
    stage.service().handle(stage.profile(phone="+8613812345678"))
    otp = request("sms-aws", channel="sms", template_id="otp", purpose="transactional")
    assert [type(e) for e in stage.service().handle(otp)] == [NotificationSent]
    assert ("+8613812345678", "验证码 4321") in stage.sms_sent().values()

    stage.tenant_settings.notify.sms_provider = "aliyun"
    out = stage.service().handle(
        request("sms-ali", channel="sms", template_id="otp", purpose="transactional")
    )
    assert [e.provider for e in out] == ["aliyun"]
    (sms,) = stage.fake.of_kind("aliyun-sms")  # the fake checked the HMAC-SHA1 signature
    assert sms.body["PhoneNumbers"] == "13812345678"
    assert sms.body["TemplateCode"] == "SMS_1234"
    assert json.loads(sms.body["TemplateParam"]) == {"code": "4321"}


def test_a_bad_aliyun_signature_is_a_permanent_failure(stage: Stage) -> None:
    stage.service().handle(stage.profile(phone="+8613812345679"))
    stage.tenant_settings.notify.sms_provider = "aliyun"
    stage.fake.aliyun_secrets["ak-1"] = "rotated"
    (out,) = stage.service().handle(
        request("sms-bad", channel="sms", template_id="otp", purpose="transactional")
    )
    assert isinstance(out, NotificationFailed)
    assert out.reason == "SignatureDoesNotMatch"
    stage.fake.aliyun_secrets["ak-1"] = "sk-1"
