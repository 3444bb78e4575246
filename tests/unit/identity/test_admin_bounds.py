"""Admin erase/unmerge bodies nested thousands of levels deep: a 400, never a 500 (issue 8, item 1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.identity.test_admin_routes import ADMIN_KEY, _apigw_event, _Ctx, world  # noqa: F401


def _post(app: Any, path: str, raw_body: str) -> tuple[int, Any]:
    event = _apigw_event("POST", path, "", {"Authorization": f"Bearer {ADMIN_KEY}"}, raw_body)
    response = app.resolve(event, _Ctx())
    return response["statusCode"], json.loads(response["body"])


def _deep(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


@pytest.mark.parametrize("depth", [5, 300, 5000, 100_000])
def test_deep_admin_bodies_are_a_400(world: dict[str, Any], depth: int) -> None:  # noqa: F811
    erase = _post(world["app"], "/admin/profiles/erase", '{"type":' + _deep(depth) + ',"value":"a"}')
    unmerge_path = f"/admin/profiles/{world['survivor']}/unmerge"
    unmerge = _post(world["app"], unmerge_path, '{"merge_id":' + _deep(depth) + "}")
    for status, body in (erase, unmerge):
        assert status == 400, body
        assert body["code"] in ("too_deep", "invalid_request")
