"""Tenants: settings (time zone, phone region, identity rules …), connector secrets, write keys.

Settings live in the tenants table; connector secrets live in Secrets Manager (one JSON secret per
tenant, ``{SECRETS_PREFIX}/tenants/{tenant}``) and are read through Powertools Parameters with a
cache, so a warm Lambda does not call Secrets Manager per request. Write keys are stored hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as pysecrets
import time
from collections import OrderedDict
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from huiliu.errors import ConditionFailed, NotFound
from huiliu.models import TENANT_ID_PATTERN
from huiliu.notify.settings import NotifySecrets, NotifySettings
from huiliu.storage.dynamo import DynamoRepository


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


class TenantSettings(BaseModel):
    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    name: str = ""
    timezone: str = "Asia/Shanghai"
    default_region: str = "CN"
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    timeline_retention_days: int | None = None
    # Identity rule overrides, by identifier type: {"email": {"limit": 5, "priority": 5}}.
    identity_rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Extra values that never identify anyone (a shop's placeholder phone, "noemail@x.com" …).
    blocked_values: list[str] = Field(default_factory=list)
    enabled_connectors: list[Connector] = Field(default_factory=lambda: list(Connector))
    # Senders, SMS provider, frequency caps (huiliu.notify.settings).
    notify: NotifySettings = Field(default_factory=NotifySettings)


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


def hash_key(value: str, salt: str) -> str:
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()


def secret_name(prefix: str, tenant_id: str) -> str:
    return f"{prefix}/tenants/{tenant_id}"


class TenantRepository(DynamoRepository):
    """Tenant settings and the write-key index in the tenants table."""

    def get_settings(self, tenant_id: str) -> TenantSettings | None:
        item = self.get(f"T#{tenant_id}", "SETTINGS", consistent=False)
        return TenantSettings.model_validate(item["settings"]) if item else None

    def put_settings(self, settings: TenantSettings) -> None:
        self.put(
            {"pk": f"T#{settings.tenant_id}", "sk": "SETTINGS", "settings": settings.model_dump(mode="json")}
        )

    def tenant_for_key_hash(self, key_hash: str) -> str | None:
        item = self.get(f"WRITEKEY#{key_hash}", "WRITEKEY", consistent=False)
        return item["tenant_id"] if item else None

    def put_write_key(self, key_hash: str, tenant_id: str) -> None:
        try:
            self.put(
                {"pk": f"WRITEKEY#{key_hash}", "sk": "WRITEKEY", "tenant_id": tenant_id},
                condition="attribute_not_exists(pk) OR tenant_id = :t",
                values={":t": tenant_id},
            )
        except ConditionFailed as exc:
            raise ValueError("write key already belongs to another tenant") from exc

    def tenant_for_admin_key(self, key_hash: str) -> str | None:
        item = self.get(f"ADMINKEY#{key_hash}", "ADMINKEY", consistent=False)
        return item["tenant_id"] if item else None

    def put_admin_key(self, key_hash: str, tenant_id: str) -> None:
        self.put({"pk": f"ADMINKEY#{key_hash}", "sk": "ADMINKEY", "tenant_id": tenant_id})


class TenantDirectory:
    """Cached read access to tenants for request handlers (settings, secrets, write keys)."""

    # Bounded cache: at most this many entries (least recently used evicted first) …
    MAX_ENTRIES = 2048
    # … and misses (unknown tenant / write key) are remembered only briefly, so a tenant created a
    # moment ago is found soon and a flood of made-up keys cannot pin memory for long.
    MISS_SECONDS = 10

    def __init__(
        self,
        repo: TenantRepository,
        *,
        secrets_prefix: str,
        salt: str,
        cache_seconds: int = 300,
        secrets_client: Any | None = None,
        max_entries: int | None = None,
        miss_seconds: float | None = None,
    ) -> None:
        self.repo = repo
        self.secrets_prefix = secrets_prefix
        self.salt = salt
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries or self.MAX_ENTRIES
        self.miss_seconds = min(cache_seconds, self.MISS_SECONDS if miss_seconds is None else miss_seconds)
        self._secrets_client = secrets_client
        # key → (expires at, value); ordered by last use.
        self._cache: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._provider: Any = None

    def _cached(self, key: str, load: Any) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and now < hit[0]:
            self._cache.move_to_end(key)
            return hit[1]
        value = load()
        ttl = self.cache_seconds if value is not None else self.miss_seconds
        self._cache[key] = (now + ttl, value)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return value

    def settings(self, tenant_id: str) -> TenantSettings:
        found = self._cached(f"settings#{tenant_id}", lambda: self.repo.get_settings(tenant_id))
        if found is None:
            raise NotFound("unknown tenant or connector", reason="not_found")
        return found

    def secrets(self, tenant_id: str) -> TenantSecrets:
        def load() -> TenantSecrets:
            raw = self._secrets_provider().get(
                secret_name(self.secrets_prefix, tenant_id), max_age=self.cache_seconds, transform="json"
            )
            return TenantSecrets.model_validate(raw)

        try:
            return self._cached(f"secrets#{tenant_id}", load)
        except Exception as exc:  # a missing secret means an unknown tenant to the caller
            if isinstance(exc, NotFound):
                raise
            from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
            from botocore.exceptions import ClientError

            if isinstance(exc, GetParameterError | ClientError):
                raise NotFound("unknown tenant or connector", reason="not_found") from exc
            raise

    def tenant_for_write_key(self, write_key: str) -> str | None:
        return self._cached(
            f"wk#{write_key}", lambda: self.repo.tenant_for_key_hash(hash_key(write_key, self.salt))
        )

    def _secrets_provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            if self._secrets_client is None:
                from huiliu import aws

                self._secrets_client = aws.client("secretsmanager")
            self._provider = SecretsProvider(boto3_client=self._secrets_client)
        return self._provider


def new_demo_secrets() -> TenantSecrets:
    """Fresh random connector secrets in each source's own format."""
    import base64

    return TenantSecrets(
        youzan=YouzanSecrets(client_id=pysecrets.token_hex(8), client_secret=pysecrets.token_hex(16)),
        wechat=WeChatSecrets(
            token=pysecrets.token_urlsafe(16).replace("-", "a").replace("_", "b"),
            encoding_aes_key=base64.b64encode(pysecrets.token_bytes(32)).decode()[:43],
            app_id="wx" + pysecrets.token_hex(8),
        ),
        shopify=ShopifySecrets(secret="shpss_" + pysecrets.token_hex(16)),
        signed_json=SignedJsonSecrets(secret="whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode()),
        segment=SegmentSecrets(write_key=pysecrets.token_urlsafe(24)),
    )


def provision_tenant(
    settings: TenantSettings,
    tenant_secrets: TenantSecrets,
    *,
    repo: TenantRepository,
    secrets_client: Any,
    secrets_prefix: str,
    salt: str,
) -> None:
    """Create or update a tenant: settings, its secret, and its write-key index entry."""
    name = secret_name(secrets_prefix, settings.tenant_id)
    body = json.dumps(tenant_secrets.model_dump(mode="json", by_alias=True, exclude_none=True))
    try:
        secrets_client.create_secret(Name=name, SecretString=body)
    except secrets_client.exceptions.ResourceExistsException:
        secrets_client.put_secret_value(SecretId=name, SecretString=body)
    repo.put_settings(settings)
    if tenant_secrets.segment:
        repo.put_write_key(hash_key(tenant_secrets.segment.write_key, salt), settings.tenant_id)
