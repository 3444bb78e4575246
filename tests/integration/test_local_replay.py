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


def test_replay_skips_what_was_delivered_and_force_republishes_it(local_runtime: Any, tmp_path: Path) -> None:
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
    eventually(lambda: identity_item(local_runtime, f"T#demo#ID#member_id#M-{run}", "CLAIM"))
    state = tmp_path / "local.json"
    local_runtime.write_state_file(state)

    # When the last hour is replayed, then replayed again with --force
    plain = _replay(state, since, "--connector", "signed-json")
    forced = _replay(state, since, "--connector", "signed-json", "--force")

    # Then dedupe holds the first time, and --force publishes the archived events again
    assert plain["requests"] >= 1
    assert plain["accepted"] == 0
    assert plain["duplicates"] >= 1
    assert forced["accepted"] >= 1
