"""Tenant settings and connector-secret shapes (pydantic): what a tenant configures."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from huiliu.models import TENANT_ID_PATTERN
from huiliu.notify.settings import NotifySecrets, NotifySettings
from huiliu.tenants.api_keys import SCOPE_RANK as SCOPE_RANK  # re-exported: where they were
from huiliu.tenants.api_keys import ApiKey as ApiKey
from huiliu.tenants.api_keys import Scope as Scope


class Connector(StrEnum):
    YOUZAN = "youzan"
    WECHAT = "wechat"
    SHOPIFY = "shopify"
    SEGMENT = "segment"
    SIGNED_JSON = "signed-json"
    CSV_IMPORT = "csv-import"


class QuietHours(BaseModel):
    start: str = "21:00"
    end: str = "08:00"


class FrequencyCap(BaseModel):
    """At most ``limit`` messages of ``purpose`` on ``channel`` ("*": every channel) per person in
    ``days`` days. Messages over the cap are deferred to when a slot frees, or dropped (``over_cap``)."""

    channel: Literal["email", "sms", "wechat", "webhook", "*"] = "*"
    purpose: Literal["marketing", "transactional"] = "marketing"
    limit: int = Field(default=3, ge=0, le=1000)
    days: int = Field(default=7, ge=1, le=90)
    # Slots of the cap kept for messages of priority ≥ high_priority: with reserved 1, an important
    # journey's message wins the last slot even when an ordinary one asks first.
    reserved: int = Field(default=0, ge=0, le=1000)
    high_priority: int = Field(default=50, ge=0, le=100)


RuleKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SettingsFields(BaseModel):
    """A tenant's settings without its id (the admin API's settings document adds extra="forbid")."""

    name: str = ""
    timezone: str = "Asia/Shanghai"
    default_region: str = "CN"
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    # Marketing-message caps per person (notify); transactional messages are never capped by default.
    frequency_caps: list[FrequencyCap] = Field(default_factory=lambda: [FrequencyCap()])
    over_cap: Literal["defer", "drop"] = "defer"
    # Locale of messages when the person's is unknown.
    default_locale: str = "zh-CN"
    timeline_retention_days: int | None = None
    # Longest wait a journey may declare (definitions with a longer wait are refused at apply).
    journey_max_wait_days: int = Field(default=365, ge=1, le=3650)
    # Identity rule overrides, by identifier type: {"email": {"limit": 5, "priority": 5}}.
    # Keys are never empty (DynamoDB refuses an empty map key; a stored one could not be read back)
    # and values are scalars: a bad override is a 400 naming the field, never a broken settings item.
    identity_rules: dict[RuleKey, dict[RuleKey, str | bool | int | float]] = Field(default_factory=dict)
    # Extra values that never identify anyone (a shop's placeholder phone, "noemail@x.com" …).
    blocked_values: list[str] = Field(default_factory=list)
    enabled_connectors: list[Connector] = Field(default_factory=lambda: list(Connector))
    # Message senders and providers (huiliu.notify.settings).
    notify: NotifySettings = Field(default_factory=NotifySettings)


class TenantSettings(SettingsFields):
    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)


class YouzanSecrets(BaseModel):
    client_id: str
    client_secret: str
    # Accept the body ``sign`` when a push has no ``Event-Sign`` header. Risky: ``sign`` covers only
    # ``msg`` (not type/id/msg_id/version/test, and no timestamp), so a captured push can be
    # replayed as another type under a new msg_id. Off unless the tenant's Youzan app cannot send
    # Event-Sign.
    allow_body_sign: bool = False


class WeChatSecrets(BaseModel):
    token: str
    encoding_aes_key: str | None = None
    app_id: str
    app_secret: str | None = None
    # The official account's message mode. ``safe``: only encrypted POSTs (encrypt_type=aes) are
    # accepted; ``compatible``: plain POSTs too; ``plain``: no AES key. Defaults to ``safe`` when an
    # EncodingAESKey is configured, else ``plain``.
    mode: Literal["plain", "compatible", "safe"] | None = None

    @model_validator(mode="after")
    def _default_mode(self) -> WeChatSecrets:
        if self.mode is None:
            self.mode = "safe" if self.encoding_aes_key else "plain"
        return self


class ShopifySecrets(BaseModel):
    secret: str
    # Accepted for up to an hour after a rotation (Shopify keeps signing with the old one).
    previous_secret: str | None = None


class SignedJsonSecrets(BaseModel):
    secret: str  # whsec_<base64>


class SegmentSecrets(BaseModel):
    write_key: str


class TenantSecrets(BaseModel):
    youzan: YouzanSecrets | None = None
    wechat: WeChatSecrets | None = None
    shopify: ShopifySecrets | None = None
    signed_json: SignedJsonSecrets | None = Field(default=None, alias="signed-json")
    segment: SegmentSecrets | None = None
    notify: NotifySecrets | None = None

    model_config = {"populate_by_name": True}
