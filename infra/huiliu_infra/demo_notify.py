"""``huiliu demo``'s notify part: the templates applied with the CLI, and every message sent."""

from __future__ import annotations

import contextlib
import io
from typing import Any


def apply_templates(runtime: Any) -> str:
    from huiliu_infra.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        main(
            [
                "templates",
                "apply",
                "-f",
                "events/notify/templates.yaml",
                "--api",
                runtime.api_url,
                "--key",
                runtime.tenant["admin_key"],
            ]
        )
    return "\n".join("  " + line for line in buffer.getvalue().splitlines())


def report(runtime: Any) -> str:
    from huiliu_infra.local import notify_sink

    rows = notify_sink.sent(runtime)
    outcomes: dict[str, int] = {}
    for event in runtime.bus_events():
        kind = str(event.get("detail-type", ""))
        if kind.startswith("notification."):
            outcomes[kind] = outcomes.get(kind, 0) + 1
    lines = []
    if outcomes:
        lines.append("  outcomes on the bus: " + ", ".join(f"{k} ×{v}" for k, v in sorted(outcomes.items())))
    if not rows:
        lines.append("  none sent (no journey step requested a message in this run)")
    for row in rows:
        extra = "  [one-click unsubscribe]" if row.get("one_click_unsubscribe") else ""
        lines.append(
            f"  {row['channel']:<8} {row['provider']:<16} {row['to'][:30]:<30} {row['summary'][:70]}{extra}"
        )
    return "\n".join(lines)
