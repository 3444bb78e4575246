"""`huiliu --local replay` re-ingests archived raw requests of the running local runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huiliu_infra import sources

from tests.integration.helpers import eventually, identity_item

pytestmark = pytest.mark.integration


def _replay(state: Path, since: datetime, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "huiliu_infra.cli",
            "--local",
            "replay",
            "demo",
            "--start",
            since.isoformat(),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HUILIU_STATE_FILE": str(state)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_replay_hands_archived_events_to_identity_which_applies_each_once(
    local_runtime: Any, tmp_path: Path
) -> None:
    # Given a POS order that went through ingest (and so was archived)
    run = uuid.uuid4().hex[:8]
    conf = local_runtime.tenant["connectors"]["signed-json"]
    order = {
        "type": "order",
        "event": "Order Completed",
        "order_id": f"POS-{run}",
        "revenue": 10.5,
        "currency": "CNY",
        "person": {"member_id": f"M-{run}"},
    }
    # (only this test's requests: on a shared endpoint such as LocalStack, earlier runtimes'
    # demo tenants archived requests signed with secrets that no longer exist)
    since = datetime.now(UTC) - timedelta(seconds=1)
    status, _ = sources.send(sources.signed_json(conf, order))
    assert status == 200
    claim = eventually(lambda: identity_item(local_runtime, f"T#demo#ID#member_id#M-{run}", "CLAIM"))
    # (the archive stream delivers its buffer within 60 s; draining the runtime delivers it now)
    assert local_runtime.drain(timeout=30)
    state = tmp_path / "local.json"
    local_runtime.write_state_file(state)

    # When the window is replayed (twice, once with --force)
    plain = _replay(state, since, "--connector", "signed-json")
    forced = _replay(state, since, "--connector", "signed-json", "--force")
    assert local_runtime.drain(timeout=30)

    # Then the archived request is re-ingested both times, and identity's processed marker keeps
    # the order counted once (ingest writes no dedupe item per event: docs/cost.md)
    assert plain["requests"] >= 1
    assert plain["accepted"] >= 1
    assert forced["accepted"] >= 1
    profile = identity_item(local_runtime, f"T#demo#P#{claim['profile_id']}", "PROFILE")
    assert profile is not None
    assert profile["computed"]["order_count"] == 1
    assert profile["computed"]["event_count"] == 1
