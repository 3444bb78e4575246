"""Schemathesis against the local runtime's admin API: every operation of /admin/openapi.json,
generated requests (a few examples each, so ``make test`` stays fast): no 5xx, no response that
breaks the schema it documents, no undocumented status code.

Heavier fuzzing: ``SCHEMATHESIS_EXAMPLES=200 pytest tests/integration/test_admin_fuzz.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


def test_no_admin_operation_answers_5xx_or_breaks_its_schema(local_runtime: Any) -> None:
    base = f"{local_runtime.api_url}/admin"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {local_runtime.tenant['admin_key']}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)


def test_the_local_runtime_refuses_the_iam_routes_it_cannot_authenticate(local_runtime: Any) -> None:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{local_runtime.api_url}/ops/tenants/demo/keys")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310

    assert refused.value.code == 403
    assert json.loads(refused.value.read())["code"] == "iam_not_emulated"
