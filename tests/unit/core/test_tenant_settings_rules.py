"""Tenant identity-rule overrides: keys never empty, values scalars (the admin fuzzer stored
``{"NULL": {"": {}}}``, an item DynamoDB cannot hold and the emulator could not read back)."""

from __future__ import annotations

import pytest
from huiliu.tenants import TenantSettings
from pydantic import ValidationError


@pytest.mark.parametrize(
    "rules",
    [{"": {"limit": 1}}, {"email": {"": 1}}, {"NULL": {"x": {"": {}}}}, {"email": {"limit": [1]}}],
)
def test_a_bad_identity_rule_override_is_refused_naming_the_field(rules: dict) -> None:
    with pytest.raises(ValidationError, match="identity_rules"):
        TenantSettings(tenant_id="acme", identity_rules=rules)


def test_the_documented_overrides_are_accepted() -> None:
    rules = {"email": {"limit": 5, "priority": 5, "strong": True}, "_traits": {"积分": "sum"}}
    assert TenantSettings(tenant_id="acme", identity_rules=rules).identity_rules == rules
