"""Fixtures for the ingest and importer function tests (moto: tables, bucket, bus → queue, tenant)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.functions.ingest.ingest_helpers import LambdaContext, Stack, load_function, make_stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    yield from make_stack(monkeypatch)


@pytest.fixture
def ingest_app(stack: Stack) -> ModuleType:
    # Each test's stack is a new account (new secrets, tables): a fresh container — the handler
    # module imported anew, so its service slot is built for this stack (the settings compare
    # equal by value) and registered in whichever ``huiliu.stage`` is loaded now (the local
    # runtime's tests may have unloaded and re-imported it in this worker).
    sys.modules.pop("huiliu_function_ingest", None)
    return load_function("ingest")


@pytest.fixture
def importer_app() -> ModuleType:
    return load_function("importer")


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()
