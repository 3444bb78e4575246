"""A tenant's notify settings (``TenantSettings.notify``): senders, SMS provider, caps, quiet hours
for transactional mail. Quiet hours themselves and the time zone are the tenant's own settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from huiliu.notify.policy import CapRule


class FrequencyCap(BaseModel):
    """At most ``limit`` messages of ``purpose`` per ``window_days`` per profile on ``channel``."""

    channel: Literal["email", "sms", "wechat", "webhook", "*"] = "*"
    purpose: Literal["marketing", "transactional"] = "marketing"
    limit: int = Field(default=3, ge=0)
    window_days: float = Field(default=7, gt=0)
    # Slots kept for messages of priority ≥ high_priority: the important journey wins the last one.
    reserved: int = Field(default=1, ge=0)
    high_priority: int = Field(default=50, ge=0, le=100)
    over_cap: Literal["defer", "drop"] = "defer"

    def rule(self) -> CapRule:
        return CapRule(
            limit=self.limit,
            window=timedelta(days=self.window_days),
            reserved=min(self.reserved, self.limit),
            priority_threshold=self.high_priority,
            over_cap=self.over_cap,
        )


class NotifySettings(BaseModel):
    email_from: str = "noreply@example.com"
    email_from_name: str | None = None
    ses_configuration_set: str | None = None
    sms_provider: Literal["aws", "aliyun"] = "aws"
    sms_sign_name: str | None = None  # Aliyun: the approved signature (签名)
    webhook_url: str | None = None  # default target of webhook-channel templates
    caps: list[FrequencyCap] = Field(default_factory=lambda: [FrequencyCap()])
    quiet_hours_transactional: bool = False  # transactional messages (OTP, receipts) ignore quiet hours
    default_locale: str = "zh-CN"

    def cap_for(self, channel: str, purpose: str) -> CapRule | None:
        for wanted in (channel, "*"):  # a channel's own cap wins over the catch-all
            for cap in self.caps:
                if cap.purpose == purpose and cap.channel == wanted:
                    return cap.rule()
        return None


class NotifySecrets(BaseModel):
    """Provider credentials in the tenant's secret (``notify`` key). WeChat's app id and secret are
    the tenant's ``wechat`` connector secrets."""

    aliyun_access_key_id: str | None = None
    aliyun_access_key_secret: str | None = None
    webhook_secret: str | None = None  # whsec_<base64>
