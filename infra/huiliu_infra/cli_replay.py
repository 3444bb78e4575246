"""``huiliu replay``: re-ingest a tenant's archived webhooks in a time range.

Wired into ``huiliu_infra.cli`` with ``register(subparsers)``; ``run(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

# The connectors replay knows (huiliu.ingest.pipeline.CONNECTORS; kept here so --help stays cheap).
CONNECTOR_NAMES = ("youzan", "wechat", "shopify", "segment", "signed-json")


def _when(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "replay",
        help="re-ingest archived raw requests of a tenant in a time range",
        description=(
            "Re-run archived webhooks through ingest; identity's processed marker keeps each event "
            "applied once. --force also skips the per-connector replay and version guards."
        ),
    )
    parser.add_argument("tenant", help="tenant id")
    parser.add_argument("--start", required=True, type=_when, help="ISO-8601 start (UTC if no offset)")
    parser.add_argument("--end", type=_when, default=None, help="ISO-8601 end (default: now)")
    parser.add_argument(
        "--connector",
        default=None,
        choices=CONNECTOR_NAMES,
        help="only this connector (" + ", ".join(CONNECTOR_NAMES) + ")",
    )
    parser.add_argument("--force", action="store_true", help="skip the replay-guard and version checks")
    parser.add_argument("--dry-run", action="store_true", help="only count the archived requests")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from huiliu.ingest import replay

    report = replay(
        args.tenant,
        args.start,
        args.end or datetime.now(UTC),
        connector=args.connector,
        force=args.force,
        dry_run=args.dry_run,
    )
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    return 1 if report.failed else 0
