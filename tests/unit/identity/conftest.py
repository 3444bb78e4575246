"""Fixtures for identity tests: a moto identity table, a service with a manual clock, event builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from huiliu.clock import ManualClock
from huiliu.identity.repository import IdentityRepository, MemoryIdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import CanonicalEvent
from huiliu.tenants import TenantSettings
from moto import mock_aws

from tests.unit.identity.identity_helpers import (
    T0,
    TENANT,
    create_identity_table,
    create_tenants_table,
    make_event,
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from huiliu import aws
    from huiliu.settings import get_settings

    for key, value in {
        "AWS_REGION": "ap-east-1",
        "AWS_DEFAULT_REGION": "ap-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "IDENTITY_TABLE": "identity-test",
        "TENANTS_TABLE": "tenants-test",
        "EVENT_BUS_NAME": "huiliu-test",
        "HASH_SALT": "test-salt",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "LOCALSTACK_ENDPOINT", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    aws.reset_clients()
    yield
    get_settings.cache_clear()
    aws.reset_clients()


@pytest.fixture
def moto_tables(aws_env: None) -> Iterator[Any]:
    from huiliu import aws

    with mock_aws():
        aws.reset_clients()
        client = aws.client("dynamodb")
        create_identity_table(client, "identity-test")
        create_tenants_table(client, "tenants-test")
        yield client
        aws.reset_clients()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + timedelta(days=1))


@pytest.fixture
def tenant_settings() -> dict[str, TenantSettings]:
    return {TENANT: TenantSettings(tenant_id=TENANT, blocked_values=["13900000000", "noemail@shop.cn"])}


@pytest.fixture
def repo(moto_tables: Any) -> IdentityRepository:
    return IdentityRepository("identity-test", client=moto_tables, salt="test-salt")


@pytest.fixture
def memory_repo() -> MemoryIdentityRepository:
    return MemoryIdentityRepository(salt="test-salt")


def _service(
    repo: IdentityRepository, clock: ManualClock, settings: dict[str, TenantSettings]
) -> IdentityService:
    return IdentityService(
        repo,
        settings_for=lambda t: settings.get(t) or TenantSettings(tenant_id=t),
        clock=clock,
        salt="test-salt",
        backoff=lambda attempt: None,
    )


@pytest.fixture
def service(repo: IdentityRepository, clock: ManualClock, tenant_settings: dict) -> IdentityService:
    return _service(repo, clock, tenant_settings)


@pytest.fixture
def memory_service(
    memory_repo: MemoryIdentityRepository, clock: ManualClock, tenant_settings: dict
) -> IdentityService:
    return _service(memory_repo, clock, tenant_settings)


@pytest.fixture
def event() -> Callable[..., CanonicalEvent]:
    return make_event
