"""A tenant's notify settings (``TenantSettings.notify``): senders and providers. Quiet hours, time
zone, frequency caps, ``over_cap`` and ``default_locale`` are tenant settings of their own
(huiliu.tenants.models); :func:`cap_rule` turns a tenant's caps into the policy's rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel

from huiliu.notify.policy import CapRule


class NotifySettings(BaseModel):
    email_from: str = "noreply@example.com"
    email_from_name: str | None = None
    ses_configuration_set: str | None = None
    sms_provider: Literal["aws", "aliyun"] = "aws"
    sms_sign_name: str | None = None  # Aliyun: the approved signature (签名)
    webhook_url: str | None = None  # default target of webhook-channel templates
    quiet_hours_transactional: bool = False  # transactional messages (OTP, receipts) ignore quiet hours


class NotifySecrets(BaseModel):
    """Provider credentials in the tenant's secret (``notify`` key). WeChat's app id and secret are
    the tenant's ``wechat`` connector secrets."""

    aliyun_access_key_id: str | None = None
    aliyun_access_key_secret: str | None = None
    webhook_secret: str | None = None  # whsec_<base64>


def cap_rule(tenant: Any, channel: str, purpose: str) -> CapRule | None:
    """The cap for (channel, purpose): a channel's own cap wins over the catch-all ``*``."""
    for wanted in (channel, "*"):
        for cap in tenant.frequency_caps:
            if cap.purpose == purpose and cap.channel == wanted:
                return CapRule(
                    limit=cap.limit,
                    window=timedelta(days=cap.days),
                    reserved=min(cap.reserved, cap.limit),
                    priority_threshold=cap.high_priority,
                    over_cap=tenant.over_cap,
                )
    return None
