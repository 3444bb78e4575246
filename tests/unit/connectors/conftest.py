"""Fixtures for connector unit tests (helpers live in connector_helpers.py)."""

from __future__ import annotations

import pytest
from huiliu.connectors.base import TenantContext

from tests.unit.connectors.connector_helpers import make_tenant


@pytest.fixture
def tenant() -> TenantContext:
    return make_tenant()
