"""A notify stage on a threaded moto server (real threads are safe there, unlike mock_aws) with
the fake providers on localhost: tables, tenant, templates, service, and readers of what was sent."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from huiliu.clock import ManualClock
from huiliu.contracts import (
    ConsentEntry,
    IdentifierRef,
    NotificationRequested,
    ProfileChanged,
    ProfileSnapshot,
    derive_event_id,
)
from huiliu.notify.delivery import MemoryRequeue
from huiliu.notify.fakes import FakeProviders
from huiliu.notify.repository import DynamoTokenStore, MessagesRepository
from huiliu.notify.service import NotifyConfig, NotifyService
from huiliu.notify.settings import NotifySecrets, NotifySettings
from huiliu.notify.template_store import TemplateRepository
from huiliu.notify.templates import Template
from huiliu.notify.unsubscribe import signing_key
from huiliu.notify.wiring import NotifyEnv, build_senders
from huiliu.storage.dynamo import CallStats
from huiliu.tenants import FrequencyCap, TenantSecrets, TenantSettings, WeChatSecrets

TENANT = "acme"
REGION = "ap-east-1"
SES_REGION = "ap-southeast-1"
ACCOUNT = "123456789012"
SALT = "notify-test-salt"
# 2026-03-02 10:00 in Asia/Shanghai (UTC+8): outside the default quiet hours 21:00-08:00.
DAYTIME = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=SES_REGION if service == "sesv2" else REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_table(endpoint: str, name: str) -> None:
    client(endpoint, "dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


class StaticTenants:
    def __init__(self, settings: TenantSettings, tenant_secrets: TenantSecrets) -> None:
        self._settings = settings
        self._secrets = tenant_secrets

    def settings(self, tenant_id: str) -> TenantSettings:
        return self._settings

    def secrets(self, tenant_id: str) -> TenantSecrets:
        return self._secrets


EMAIL_TEMPLATE = {
    "template_id": "welcome",
    "channel": "email",
    "purpose": "marketing",
    "locales": {
        "zh-CN": {"subject": "欢迎, {{ traits.name }}", "text": "优惠码 {{ vars.coupon }}"},
        "en": {
            "subject": "Welcome, {{ traits.name }}",
            "text": "Your code {{ vars.coupon }}. Unsubscribe: {{ unsubscribe_url }}",
        },
    },
    "sample": {"traits": {"name": "Li"}, "vars": {"coupon": "X1"}},
}
RECEIPT_TEMPLATE = {
    "template_id": "receipt",
    "channel": "email",
    "purpose": "transactional",
    "locales": {"zh-CN": {"subject": "订单 {{ vars.order_id }}", "text": "谢谢 {{ traits.name }}"}},
    "sample": {"traits": {"name": "Li"}, "vars": {"order_id": "1"}},
}
WECHAT_TEMPLATE = {
    "template_id": "shipped",
    "channel": "wechat",
    "purpose": "transactional",
    "wechat": {"kind": "template", "template_id": "TPL-SHIP"},
    "locales": {
        "zh-CN": {
            "url": "https://shop.example/o/{{ vars.order_id }}",
            "fields": {"keyword1": "{{ vars.order_id }}", "keyword2": "已发货"},
        }
    },
    "sample": {"vars": {"order_id": "1"}},
}
SMS_TEMPLATE = {
    "template_id": "otp",
    "channel": "sms",
    "purpose": "transactional",
    "sms": {"template_code": "SMS_1234", "sign_name": "汇流"},
    "locales": {"zh-CN": {"text": "验证码 {{ vars.code }}", "fields": {"code": "{{ vars.code }}"}}},
    "sample": {"vars": {"code": "123456"}},
}
WEBHOOK_TEMPLATE = {
    "template_id": "crm-push",
    "channel": "webhook",
    "purpose": "transactional",
    "locales": {"zh-CN": {"fields": {"name": "{{ traits.name }}", "event": "{{ vars.what }}"}}},
    "sample": {"traits": {"name": "Li"}, "vars": {"what": "x"}},
}
TEMPLATES = [EMAIL_TEMPLATE, RECEIPT_TEMPLATE, WECHAT_TEMPLATE, SMS_TEMPLATE, WEBHOOK_TEMPLATE]


@dataclass
class Stage:
    endpoint: str
    table: str
    tenants_table: str
    fake: FakeProviders
    clock: ManualClock
    tenant_settings: TenantSettings
    tenant_secrets: TenantSecrets
    requeue: MemoryRequeue = field(default_factory=MemoryRequeue)
    stats: CallStats = field(default_factory=CallStats)
    whsec: str = ""

    def repo(self) -> MessagesRepository:
        return MessagesRepository(
            self.table, salt=SALT, client=client(self.endpoint, "dynamodb"), stats=self.stats
        )

    def service(self, *, token_store: Any = None, senders: dict[str, Any] | None = None) -> NotifyService:
        """A fresh service: one Lambda container (own clients and caches, shared tables)."""
        repo = self.repo()
        tenants = StaticTenants(self.tenant_settings, self.tenant_secrets)
        env = NotifyEnv(WECHAT_API_URL=f"{self.fake.url}/wechat", ALIYUN_SMS_URL=f"{self.fake.url}/aliyun/")
        ses, sns = client(self.endpoint, "sesv2"), client(self.endpoint, "sns")
        store = token_store or DynamoTokenStore(self.table, client=client(self.endpoint, "dynamodb"))
        built = build_senders(tenants, env, self.clock.now, store)
        built["email"].client = lambda: ses
        built["sms:aws"].client = lambda: sns
        built.update(senders or {})
        templates = TemplateRepository(self.tenants_table, client=client(self.endpoint, "dynamodb"))
        return NotifyService(
            repo=repo,
            tenants=tenants,
            templates=_Templates(templates),
            senders=built,
            requeue=self.requeue,
            now=self.clock.now,
            config=NotifyConfig(public_api_url="https://api.example", unsubscribe_key=signing_key(SALT)),
        )

    def profile(
        self,
        profile_id: str = "p1",
        *,
        email: str | None = "li@example.com",
        phone: str | None = "+8613800138000",
        openid: str | None = "o-li",
        consent: dict[str, bool] | None = None,
        timezone: str | None = None,
        locale: str | None = None,
        version: int = 1,
    ) -> ProfileChanged:
        idents = [
            IdentifierRef(type=t, value=v)
            for t, v in (("email", email), ("phone", phone), ("wechat_openid", openid))
            if v
        ]
        traits: dict[str, Any] = {"name": "Li Lei"}
        if timezone:
            traits["timezone"] = timezone
        if locale:
            traits["locale"] = locale
        grants = {"email": True, "sms": True, "wechat": True} if consent is None else consent
        snapshot = ProfileSnapshot(
            profile_id=profile_id,
            version=version,
            identifiers=idents,
            traits=traits,
            consent={k: ConsentEntry(granted=v, at="2026-01-01T00:00:00+00:00") for k, v in grants.items()},
        )
        return ProfileChanged(
            event_id=derive_event_id(profile_id, version),
            tenant_id=TENANT,
            occurred_at="2026-01-01T00:00:00+00:00",
            profile_id=profile_id,
            version=version,
            profile=snapshot,
        )

    def ses_sent(self) -> list[Any]:
        from moto.ses.models import ses_backends

        return list(ses_backends[ACCOUNT][SES_REGION].sent_messages)

    def sms_sent(self) -> dict[str, tuple[str, str]]:
        from moto.sns.models import sns_backends

        return dict(sns_backends[ACCOUNT][REGION].sms_messages)


class _Templates:
    def __init__(self, repo: TemplateRepository) -> None:
        self.repo = repo

    def get(self, tenant: str, template_id: str) -> Template | None:
        return self.repo.get_template(tenant, template_id)


def request(
    key: str | None = None,
    *,
    channel: str = "email",
    template_id: str = "welcome",
    purpose: str = "marketing",
    profile_id: str = "p1",
    priority: int = 0,
    variables: dict[str, Any] | None = None,
    fallback: list[str] | None = None,
    locale: str | None = None,
) -> NotificationRequested:
    key = key or f"k-{uuid.uuid4().hex[:10]}"
    return NotificationRequested(
        event_id=derive_event_id("req", key),
        tenant_id=TENANT,
        occurred_at="2026-01-01T00:00:00+00:00",
        idempotency_key=key,
        profile_id=profile_id,
        channel=channel,
        template_id=template_id,
        purpose=purpose,
        priority=priority,
        locale=locale,
        variables=variables
        if variables is not None
        else {"coupon": "SAVE10", "order_id": "A1", "code": "4321", "what": "signup"},
        fallback=fallback or [],
        journey_id="j1",
        enrollment_id="e1",
        step_id="s1",
    )


def new_stage(endpoint: str, fake: FakeProviders, caps: list[Any] | None = None, **notify: Any) -> Stage:
    table, tenants_table = f"messages-{uuid.uuid4().hex[:8]}", f"tenants-{uuid.uuid4().hex[:8]}"
    create_table(endpoint, table)
    create_table(endpoint, tenants_table)
    client(endpoint, "sesv2").create_email_identity(EmailIdentity="shop.example")
    whsec = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    settings = TenantSettings(
        tenant_id=TENANT,
        notify=NotifySettings(
            email_from="hello@shop.example",
            ses_configuration_set="huiliu-events",
            webhook_url=f"{fake.url}/webhook/crm",
            **notify,
        ),
        frequency_caps=caps if caps is not None else [FrequencyCap(channel="*", limit=3, days=7, reserved=1)],
    )
    tenant_secrets = TenantSecrets(
        wechat=WeChatSecrets(token="t", app_id="wx-app", app_secret="wx-secret"),
        notify=NotifySecrets(
            aliyun_access_key_id="ak-1", aliyun_access_key_secret="sk-1", webhook_secret=whsec
        ),
    )
    fake.aliyun_secrets["ak-1"] = "sk-1"
    repo = TemplateRepository(tenants_table, client=client(endpoint, "dynamodb"))
    for body in TEMPLATES:
        repo.save_template(TENANT, Template.model_validate(body))
    return Stage(
        endpoint, table, tenants_table, fake, ManualClock(DAYTIME), settings, tenant_secrets, whsec=whsec
    )
