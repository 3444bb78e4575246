"""Segments through the local runtime: the shipped examples applied with the CLI (a refused file
first: nothing saved), an order entering "ordered in the last 30 days" in real time, and 31 days
later the sweep taking the person out with no new event — the `huiliu local advance 31d` story."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import eventually, segment_call

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _cli(runtime: Any, *args: str, as_json: bool = True) -> tuple[int, Any, str]:
    """The CLI as a user runs it: its own process, HTTP to the runtime's admin API."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "huiliu_infra.cli",
            *args,
            "--api",
            runtime.api_url,
            "--key",
            runtime.tenant["admin_key"],
            *(["--json"] if as_json else []),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = json.loads(done.stdout) if as_json and done.stdout.strip().startswith("{") else done.stdout
    return done.returncode, out, done.stderr


def test_examples_apply_an_order_enters_and_31_days_later_the_sweep_takes_it_out(
    local_runtime: Any, tmp_path: Path
) -> None:
    runtime = local_runtime
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: Bad\ncondition:\n  event: Order Completed\n  within: P1Y\n")
    code, _, err = _cli(runtime, "segments", "apply", "-f", str(bad), as_json=False)
    assert code == 1
    assert "bad:condition.within" in err
    code, body, _ = _cli(runtime, "segments", "apply", "-f", str(ROOT / "examples/segments"), "--dry-run")
    assert code == 0
    assert body["dry_run"] is True
    assert _cli(runtime, "segments", "list")[1]["segments"] == []  # nothing saved by either
    code, body, _ = _cli(runtime, "segments", "apply", "-f", str(ROOT / "examples/segments"))
    assert code == 0
    assert {s["action"] for s in body["segments"]} == {"created"}

    user = f"seg-{uuid.uuid4().hex[:8]}"
    now = runtime.clock.now()
    status, _ = segment_call(
        runtime.api_url,
        runtime.tenant["connectors"]["segment"]["write_key"],
        "track",
        {
            "userId": user,
            "event": "Order Completed",
            "messageId": f"m-{user}",
            "timestamp": now.isoformat(),
            "properties": {"order_id": f"o-{user}", "revenue": 120},
        },
    )
    assert status == 200

    def member() -> str | None:
        code, view, _ = _cli(runtime, "profiles", "get", "--user-id", user)
        if code != 0:
            return None
        pid = view["profile_id"]
        members = _cli(runtime, "segments", "members", "recent_buyers")[1]["members"]
        return pid if pid in {m["profile_id"] for m in members} else None

    profile_id = eventually(member, timeout=30)
    code, why, _ = _cli(runtime, "segments", "why", "recent_buyers", "--user-id", user)
    assert (code, why["member"], why["explain"]["held"]) == (0, True, True)
    runtime.bus_events()  # drop what came before

    runtime.advance(timedelta(days=29), step=timedelta(days=1))
    assert profile_id in {
        m["profile_id"] for m in _cli(runtime, "segments", "members", "recent_buyers")[1]["members"]
    }
    runtime.advance(timedelta(days=2), step=timedelta(days=1))
    exits = [
        e["detail"]
        for e in runtime.bus_events()
        if e.get("detail-type") == "segment.exited" and e["detail"].get("segment_id") == "recent_buyers"
    ]
    assert [(e["profile_id"], e["reason"]) for e in exits] == [(profile_id, "time")]
    assert _cli(runtime, "segments", "count", "recent_buyers")[1]["count"] == 0
    code, text, _ = _cli(runtime, "segments", "why", "recent_buyers", "--user-id", user, as_json=False)
    assert code == 0
    assert "is NOT in recent_buyers" in text
    assert "✗" in text
