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
def ingest_app() -> ModuleType:
    return load_function("ingest")


@pytest.fixture
def importer_app() -> ModuleType:
    return load_function("importer")


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()
