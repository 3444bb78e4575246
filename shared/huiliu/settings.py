"""Configuration as one pydantic model read from the environment, validated once per process.

A plain pydantic model whose field aliases are the variables' names, validated from ``os.environ``
(:meth:`EnvModel.from_env`): importing pydantic-settings for this cost a cold start about 45 ms of
CPU (its sources, dotenv, argparse), more than everything else the settings do (docs/cost.md).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field


class EnvModel(BaseModel):
    """Values read from the process environment: each field's alias is its variable's name (exact,
    as the template sets them); variables the model does not name are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """The environment's values (``overrides``, by variable name, win)."""
        return cls.model_validate({**os.environ, **overrides})


class Settings(EnvModel):
    """Every value a function reads from its environment (template.yaml Globals / function env)."""

    stage: str = Field(default="local", alias="HUILIU_STAGE")
    region: str = Field(default="ap-east-1", alias="AWS_REGION")
    event_bus_name: str = Field(default="huiliu", alias="EVENT_BUS_NAME")
    # The SNS topic of the hot fan-out (huiliu.bus.SNS_DETAIL_TYPES; docs/contracts.md).
    bus_topic_arn: str = Field(default="", alias="BUS_TOPIC_ARN")
    tenants_table: str = Field(default="huiliu-tenants", alias="TENANTS_TABLE")
    identity_table: str = Field(default="huiliu-identity", alias="IDENTITY_TABLE")
    segments_table: str = Field(default="huiliu-segments", alias="SEGMENTS_TABLE")
    journeys_table: str = Field(default="huiliu-journeys", alias="JOURNEYS_TABLE")
    messages_table: str = Field(default="huiliu-messages", alias="MESSAGES_TABLE")
    reports_table: str = Field(default="huiliu-reports", alias="REPORTS_TABLE")
    idempotency_table: str = Field(default="huiliu-idempotency", alias="IDEMPOTENCY_TABLE")
    raw_bucket: str = Field(default="huiliu-raw", alias="RAW_BUCKET")
    # The Firehose delivery stream that batches raw requests into RAW_BUCKET (docs/cost.md).
    raw_archive_stream: str = Field(default="huiliu-raw-archive", alias="RAW_ARCHIVE_STREAM")
    # Ingest and import hand canonical events straight to identity's queue (docs/cost.md).
    identity_queue_url: str = Field(default="", alias="IDENTITY_QUEUE_URL")
    # Ingest's per-tenant accepted / refused counts go to the reports stage's queue (docs/admin.md).
    reports_queue_url: str = Field(default="", alias="REPORTS_QUEUE_URL")
    secrets_prefix: str = Field(default="huiliu/local", alias="SECRETS_PREFIX")
    # Largest webhook body accepted before parsing (bytes). Segment's own batch limit is 500 KB.
    max_body_bytes: int = Field(default=512 * 1024, alias="MAX_BODY_BYTES")
    # Secrets and tenant settings are cached this long (seconds) in a warm Lambda.
    config_cache_seconds: int = Field(default=300, alias="CONFIG_CACHE_SECONDS")
    # Timeline items expire after this many days unless the tenant says otherwise.
    timeline_retention_days: int = Field(default=730, alias="TIMELINE_RETENTION_DAYS")
    # Salt for hashing API keys and erased identifiers; rotate through the stack parameter.
    hash_salt: str = Field(default="huiliu-local-salt", alias="HASH_SALT")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings.from_env()
