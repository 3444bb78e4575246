"""The profile 360 view, unmerge, export and erase through the CLI against the local runtime
(CLI → admin HTTP route → admin Lambda → identity table), with the pipeline feeding it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.integration.helpers import eventually, http, identity_item, segment_call

pytestmark = pytest.mark.integration


def _cli(runtime: Any, *args: str) -> tuple[int, Any]:
    """Run the CLI as a user would: its own process, talking HTTP to the runtime."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "huiliu_infra.cli",
            "profiles",
            *args,
            "--api",
            runtime.api_url,
            "--key",
            runtime.tenant["admin_key"],
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def _send(runtime: Any, call: str, payload: dict[str, Any]) -> None:
    status, _ = segment_call(
        runtime.api_url, runtime.tenant["connectors"]["segment"]["write_key"], call, payload
    )
    assert status == 200


def _claim(runtime: Any, kind: str, value: str) -> dict[str, Any]:
    return eventually(lambda: identity_item(runtime, f"T#demo#ID#{kind}#{value}", "CLAIM"))


def test_a_merged_person_is_one_profile_and_the_merge_can_be_undone(
    local_runtime: Any,
) -> None:
    # Given a browsing session and a sign-up that later turn out to be one person
    run = uuid.uuid4().hex[:8]
    email = f"mei-{run}@example.com"
    _send(local_runtime, "identify", {"userId": f"u-{run}", "traits": {"name": "Mei"}})
    first = _claim(local_runtime, "user_id", f"u-{run}")
    _send(local_runtime, "identify", {"anonymousId": f"a-{run}", "traits": {"email": email}})
    second = _claim(local_runtime, "email", email)
    assert first["profile_id"] != second["profile_id"]

    # When an event links them, the 360 view shows one person who absorbed the other
    _send(
        local_runtime,
        "track",
        {
            "userId": f"u-{run}",
            "event": "Signed In",
            "properties": {},
            "context": {"traits": {"email": email}},
        },
    )
    eventually(lambda: _claim(local_runtime, "email", email)["profile_id"] == first["profile_id"] or None)
    code, view = _cli(local_runtime, "get", "--user-id", f"u-{run}")
    assert code == 0
    body = json.dumps(view)
    assert second["profile_id"] in body
    assert email in body

    # Then unmerging brings the absorbed profile back with its own email
    code, _ = _cli(
        local_runtime, "unmerge", "--id", first["profile_id"], "--absorbed-id", second["profile_id"]
    )
    assert code == 0
    assert _claim(local_runtime, "email", email)["profile_id"] == second["profile_id"]


def test_export_then_erase_removes_the_person_and_a_replay_does_not_bring_them_back(
    local_runtime: Any,
) -> None:
    # Given a person with a phone and an order
    run = uuid.uuid4().hex[:8]
    user = f"erase-{run}"
    _send(
        local_runtime,
        "identify",
        {
            "userId": user,
            "messageId": f"m-{run}",
            "traits": {"phone": "+86 139-0013-9000", "email": f"{user}@example.com"},
        },
    )
    claim = _claim(local_runtime, "user_id", user)

    # When ops export, then erase the person found by email
    code, export = _cli(local_runtime, "export", "--email", f"{user}@example.com")
    assert code == 0
    assert user in json.dumps(export)
    code, _ = _cli(local_runtime, "erase", "--email", f"{user}@example.com")
    assert code == 0

    # Then the profile and its claims are gone, and replaying the same old event does not re-create them
    assert identity_item(local_runtime, f"T#demo#P#{claim['profile_id']}", "PROFILE") is None
    assert identity_item(local_runtime, f"T#demo#ID#user_id#{user}", "CLAIM") is None
    _send(
        local_runtime,
        "identify",
        {
            "userId": user,
            "messageId": f"m-{run}-replayed",
            "timestamp": "2020-01-01T00:00:00Z",
            "traits": {"email": f"{user}@example.com"},
        },
    )
    local_runtime.drain(timeout=20)
    assert identity_item(local_runtime, f"T#demo#ID#user_id#{user}", "CLAIM") is None


def test_the_admin_route_refuses_a_wrong_key_and_answers_unknown_ids_with_404(local_runtime: Any) -> None:
    status, _, raw = http(
        "GET", local_runtime.api_url + "/admin/profiles/nope", headers={"Authorization": "Bearer wrong"}
    )
    assert status == 401
    assert json.loads(raw)["code"] == "invalid_credentials"
    status, _, raw = http(
        "GET",
        local_runtime.api_url + "/admin/profiles/p-does-not-exist",
        headers={"Authorization": f"Bearer {local_runtime.tenant['admin_key']}"},
    )
    assert status == 404
