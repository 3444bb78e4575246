"""The segments part of ``huiliu demo``: load the shipped examples (examples/segments/), show the
audiences, one person's "why", and a membership ending by time alone."""

from __future__ import annotations

import contextlib
import io
from datetime import timedelta
from typing import Any

from huiliu_infra import sources
from huiliu_infra.local.provision import ROOT

EXAMPLES = ROOT / "examples" / "segments"


def _cli(runtime: Any, *args: str) -> str:
    """Run ``huiliu <args>`` in process against the runtime; returns what it printed."""
    from huiliu_infra.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        main([*args, "--api", runtime.api_url, "--key", runtime.tenant["admin_key"]])
    # the in-process admin handler prints its metrics (EMF JSON) to the same stdout
    lines = [line for line in buffer.getvalue().splitlines() if not line.startswith('{"_aws"')]
    return "\n".join(lines).rstrip()


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def apply_examples(runtime: Any) -> str:
    return _cli(runtime, "segments", "apply", "-f", str(EXAMPLES))


def audiences(runtime: Any) -> str:
    return _cli(runtime, "segments", "list")


def why(runtime: Any, segment: str, phone: str) -> str:
    return _cli(runtime, "segments", "why", segment, "--phone", phone)


def order_now(runtime: Any, user_id: str = "u-1001") -> tuple[int, str]:
    """A new Segment ``Order Completed`` stamped with the runtime's clock (the samples are older)."""
    now = runtime.clock.now()
    payload = {
        "userId": user_id,
        "event": "Order Completed",
        "messageId": f"demo-order-{int(now.timestamp())}",
        "properties": {"order_id": f"DEMO-{int(now.timestamp())}", "revenue": 88, "currency": "CNY"},
        "timestamp": now.isoformat(),
    }
    return sources.send(sources.segment(runtime.tenant["connectors"]["segment"], "track", payload))


def transitions(events: list[dict[str, Any]]) -> list[str]:
    """segment.entered / segment.exited among bus events (``runtime.bus_events()`` consumes them)."""
    lines = []
    for event in events:
        kind = event.get("detail-type")
        if kind in ("segment.entered", "segment.exited"):
            d = event.get("detail", {})
            flag = " (backfill)" if d.get("backfill") else ""
            who = str(d.get("profile_id", ""))[:12]
            lines.append(f"{kind:<15} {d.get('segment_id'):<26} {who}  {d.get('reason')}{flag}")
    return lines


def leave_by_time(runtime: Any, say: Any) -> None:
    """Thirty-one days after the demo order: "ordered in the last 30 days" empties with no new event."""
    runtime.bus_events()  # what came before is shown already
    runtime.advance(timedelta(days=28), step=timedelta(days=1))
    say(f"  clock now {runtime.clock.now():%Y-%m-%d %H:%M} UTC; segment transitions by time:")
    say(indent("\n".join(transitions(runtime.bus_events())) or "(none)"))
    say(indent(_cli(runtime, "segments", "count", "recent_buyers")))
