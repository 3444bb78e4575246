"""Shared fixtures: fake credentials, a clean AWS client cache, moto (mock_aws) with the whole
template provisioned, and the local runtime for integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

ENDPOINT_VARS = ("AWS_ENDPOINT_URL", "LOCALSTACK_ENDPOINT", "LOCALSTACK_HOSTNAME", "USE_LOCALSTACK")


def _reset_process_caches() -> None:
    from huiliu import aws, stage
    from huiliu.adminapi import wiring as admin_wiring
    from huiliu.settings import get_settings

    aws.reset_clients()
    get_settings.cache_clear()
    # The admin API's authenticator and the routers' lazily built admins hold clients: one built
    # under moto must not serve a later local runtime (its calls would go to real AWS).
    stage.configure(admin_wiring.STAGE)


@pytest.fixture(autouse=True)
def _aws_test_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit and function tests never reach a real or emulated endpoint by accident."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
        monkeypatch.setenv("AWS_REGION", "ap-east-1")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-east-1")
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Huiliu")
        for var in ENDPOINT_VARS:
            monkeypatch.delenv(var, raising=False)
        for key in list(os.environ):
            if key.startswith("AWS_ENDPOINT_URL_"):
                monkeypatch.delenv(key, raising=False)
        _reset_process_caches()
    yield
    _reset_process_caches()


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """mock_aws with everything template.yaml declares provisioned, and its env vars set."""
    from huiliu_infra.local import moto_fast
    from huiliu_infra.local.provision import provision
    from moto import mock_aws

    moto_fast.install()  # the emulator as the local runtime runs it (PartiQL batch updates: moto_fast)
    with mock_aws():
        deployment = provision(region="ap-east-1")
        for key, value in deployment.shared_env().items():
            monkeypatch.setenv(key, value)
        _reset_process_caches()
        yield deployment


class _LocalEnv:
    """Saves and restores process env around a local runtime (it sets endpoint variables)."""

    def __enter__(self) -> None:
        self.saved = dict(os.environ)

    def __exit__(self, *exc: object) -> None:
        os.environ.clear()
        os.environ.update(self.saved)
        _reset_process_caches()


@pytest.fixture(scope="module")
def local_runtime() -> Iterator[Any]:
    """The local runtime on free ports: the embedded moto server, or the endpoint the environment
    names (``HUILIU_AWS_ENDPOINT`` — e.g. LocalStack, with ``AWS_ENDPOINT_URL_DYNAMODB`` for a
    DynamoDB it cannot run offline)."""
    from huiliu_infra.local.runtime import LocalRuntime

    with _LocalEnv():
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"
        runtime = LocalRuntime(
            http_port=0,
            aws_port=0,
            endpoint=os.environ.get("HUILIU_AWS_ENDPOINT"),
            write_state=False,
            quiet=True,
        )
        runtime.start()
        try:
            yield runtime
        finally:
            runtime.stop()
