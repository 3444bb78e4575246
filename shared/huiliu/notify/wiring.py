"""Builds the real notify collaborators from the environment (Lambda), once per container."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from huiliu.settings import EnvModel


class NotifyEnv(EnvModel):
    """Notify's own variables (``NotifyEnv.from_env()``; constructed directly, the defaults)."""

    email_queue_url: str = Field(default="", alias="NOTIFY_EMAIL_QUEUE_URL")
    sms_queue_url: str = Field(default="", alias="NOTIFY_SMS_QUEUE_URL")
    wechat_queue_url: str = Field(default="", alias="NOTIFY_WECHAT_QUEUE_URL")
    webhook_queue_url: str = Field(default="", alias="NOTIFY_WEBHOOK_QUEUE_URL")
    wechat_api_url: str = Field(default="https://api.weixin.qq.com", alias="WECHAT_API_URL")
    aliyun_sms_url: str = Field(default="https://dysmsapi.aliyuncs.com/", alias="ALIYUN_SMS_URL")
    public_api_url: str | None = Field(default=None, alias="PUBLIC_API_URL")
    # Per container; times the WeChat queue's maximum concurrency = the account's send rate.
    wechat_rate_per_second: float = Field(default=20.0, alias="WECHAT_RATE_PER_SECOND")
    max_sqs_delay: int = Field(default=900, alias="NOTIFY_MAX_SQS_DELAY")
    # SES is not offered in every region (not in ap-east-1): mail goes through this one.
    ses_region: str = Field(default="ap-southeast-1", alias="SES_REGION")

    def queue_urls(self) -> dict[str, str]:
        return {
            "email": self.email_queue_url,
            "sms": self.sms_queue_url,
            "wechat": self.wechat_queue_url,
            "webhook": self.webhook_queue_url,
        }


def build_repository() -> Any:
    from huiliu.notify.repository import MessagesRepository
    from huiliu.settings import get_settings

    settings = get_settings()
    return MessagesRepository(settings.messages_table, salt=settings.hash_salt)


def build_tenants() -> Any:
    from huiliu.settings import get_settings
    from huiliu.tenants import TenantDirectory, TenantRepository

    settings = get_settings()
    return TenantDirectory(
        TenantRepository(settings.tenants_table),
        secrets_prefix=settings.secrets_prefix,
        salt=settings.hash_salt,
        cache_seconds=settings.config_cache_seconds,
    )


def build_senders(tenants: Any, env: NotifyEnv, now: Any, token_store: Any) -> dict[str, Any]:
    from huiliu import aws
    from huiliu.notify.channels.email import SesEmailSender
    from huiliu.notify.channels.sms import AliyunSmsSender, SnsSmsSender
    from huiliu.notify.channels.webhook import WebhookSender
    from huiliu.notify.channels.wechat import TokenBucket, WeChatApi, WeChatSender, WeChatTokens

    def sender_for(tenant: str) -> tuple[str, str | None, str | None]:
        ns = tenants.settings(tenant).notify
        return ns.email_from, ns.email_from_name, ns.ses_configuration_set

    def aliyun_keys(tenant: str) -> tuple[str, str]:
        secrets = tenants.secrets(tenant).notify
        if not secrets or not secrets.aliyun_access_key_id or not secrets.aliyun_access_key_secret:
            from huiliu.notify.channels.base import ProviderError

            raise ProviderError("permanent", "aliyun_not_configured", tenant)
        return secrets.aliyun_access_key_id, secrets.aliyun_access_key_secret

    def wechat_keys(tenant: str) -> tuple[str, str]:
        wechat = tenants.secrets(tenant).wechat
        if not wechat or not wechat.app_secret:
            from huiliu.notify.channels.base import ProviderError

            raise ProviderError("permanent", "wechat_not_configured", tenant)
        return wechat.app_id, wechat.app_secret

    def webhook_secret(tenant: str) -> str:
        secrets = tenants.secrets(tenant).notify
        if not secrets or not secrets.webhook_secret:
            from huiliu.notify.channels.base import ProviderError

            raise ProviderError("permanent", "webhook_secret_not_configured", tenant)
        return secrets.webhook_secret

    api = WeChatApi(env.wechat_api_url)
    return {
        "email": SesEmailSender(lambda: aws.client("sesv2", region_name=env.ses_region), sender_for),
        "sms:aws": SnsSmsSender(lambda: aws.client("sns")),
        "sms:aliyun": AliyunSmsSender(env.aliyun_sms_url, aliyun_keys, now),
        "wechat": WeChatSender(
            api,
            WeChatTokens(token_store, api.fetch_token),
            wechat_keys,
            bucket=TokenBucket(env.wechat_rate_per_second, max(1.0, env.wechat_rate_per_second)),
        ),
        "webhook": WebhookSender(webhook_secret, now),
    }


def build_service() -> Any:
    from huiliu import aws
    from huiliu.clock import utcnow
    from huiliu.notify.delivery import SqsRequeue
    from huiliu.notify.repository import DynamoTokenStore
    from huiliu.notify.service import NotifyConfig, NotifyService
    from huiliu.notify.template_store import CachedTemplates, TemplateRepository
    from huiliu.notify.unsubscribe import signing_key
    from huiliu.settings import get_settings

    settings = get_settings()
    env = NotifyEnv.from_env()
    repo = build_repository()
    tenants = build_tenants()
    return NotifyService(
        repo=repo,
        tenants=tenants,
        templates=CachedTemplates(TemplateRepository(settings.tenants_table)),
        senders=build_senders(tenants, env, utcnow, DynamoTokenStore(settings.messages_table)),
        requeue=SqsRequeue(
            env.queue_urls(), repo, client=lambda: aws.client("sqs"), max_sqs_delay=env.max_sqs_delay
        ),
        now=utcnow,
        config=NotifyConfig(
            public_api_url=env.public_api_url, unsubscribe_key=signing_key(settings.hash_salt)
        ),
    )


def build_tick() -> Any:
    from huiliu import aws
    from huiliu.notify.delivery import DueTick

    return DueTick(build_repository(), NotifyEnv.from_env().queue_urls(), lambda: aws.client("sqs"))
