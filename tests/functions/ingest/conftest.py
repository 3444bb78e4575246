"""Fixtures for the ingest and importer function tests (moto: tables, bucket, bus → queue, tenant)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.functions.ingest.ingest_helpers import LambdaContext, Stack, load_function, make_stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    yield from make_stack(monkeypatch)


@pytest.fixture
def ingest_app(stack: Stack) -> ModuleType:
    from huiliu.stage import _STAGES

    module = load_function("ingest")
    # each test's stack is a new account (new secrets, tables): a fresh container, not one built
    # for the previous test's stack (the settings compare equal by value)
    _STAGES["ingest"].service = None
    return module


@pytest.fixture
def importer_app() -> ModuleType:
    return load_function("importer")


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()
