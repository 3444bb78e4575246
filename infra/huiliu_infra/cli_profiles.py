"""``huiliu profiles get|unmerge|erase|export``: the profile 360 view and PIPL/GDPR tools.

Talks to the admin HTTP API (``/admin/profiles/...``) of the local runtime or a deployed stack
with ``Authorization: Bearer <admin key>``; the key comes from ``--key``, ``HUILIU_ADMIN_KEY`` or
the local runtime's ``.huiliu/local.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from huiliu_infra import default_api, local_state
from huiliu_infra.admin_client import CliError, Refused, call, resolve_key

__all__ = ["DEFAULT_API", "CliError", "Refused", "call"]

DEFAULT_API = default_api()


def local_admin_key() -> str | None:
    key = local_state().get("admin_key")
    return str(key) if key else None


def _key(args: argparse.Namespace) -> str:
    return resolve_key(args.key)


def _identifier(args: argparse.Namespace) -> tuple[str, str] | None:
    for kind in ("phone", "email", "user_id", "member_id"):
        value = getattr(args, kind, None)
        if value:
            return kind, value
    if getattr(args, "type", None) and getattr(args, "value", None):
        return args.type, args.value
    return None


def _add_identifier_options(parser: argparse.ArgumentParser, *, with_id: bool = True) -> None:
    group = parser.add_argument_group("who (one of)")
    group.add_argument("--phone")
    group.add_argument("--email")
    group.add_argument("--user-id", dest="user_id")
    group.add_argument("--member-id", dest="member_id")
    group.add_argument("--type", help="any identifier type, with --value")
    group.add_argument("--value")
    if with_id:
        group.add_argument("--id", dest="profile_id", help="a profile id (an absorbed id works too)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=DEFAULT_API, help="API base URL (default %(default)s)")
    parser.add_argument(
        "--key", default=None, help="admin key (default: $HUILIU_ADMIN_KEY or .huiliu/local.json)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("profiles", help="profile 360 view, unmerge, erase, export")
    sub = parser.add_subparsers(dest="profiles_action", required=True)

    get = sub.add_parser("get", help="the 360 view of one person")
    _add_identifier_options(get)
    get.add_argument("--cursor", help="timeline page cursor (from a previous answer)")
    get.add_argument("--limit", type=int, default=20, help="timeline items per page")
    _add_common(get)
    get.set_defaults(func=run)

    unmerge = sub.add_parser("unmerge", help="undo a merge: the absorbed profile comes back")
    unmerge.add_argument("--id", dest="profile_id", required=True, help="the surviving profile id")
    which = unmerge.add_mutually_exclusive_group(required=True)
    which.add_argument("--merge-id")
    which.add_argument("--absorbed-id")
    _add_common(unmerge)
    unmerge.set_defaults(func=run)

    erase = sub.add_parser("erase", help="erase a person (PIPL/GDPR) found by any identifier")
    _add_identifier_options(erase, with_id=False)
    _add_common(erase)
    erase.set_defaults(func=run)

    export = sub.add_parser("export", help="everything about a person as JSON")
    _add_identifier_options(export)
    export.add_argument("--out", help="write the JSON to this file instead of stdout")
    _add_common(export)
    export.set_defaults(func=run)
    return parser


def _profile_id(args: argparse.Namespace, key: str) -> str:
    if getattr(args, "profile_id", None):
        return str(args.profile_id)
    ident = _identifier(args)
    if ident is None:
        raise CliError("say who: --phone, --email, --user-id, --member-id, --type/--value or --id")
    view = call(
        args.api, key, "GET", "/profiles/lookup", query={"type": ident[0], "value": ident[1], "limit": 1}
    )
    return str(view["profile_id"])


def run(args: argparse.Namespace) -> int:
    try:
        key = _key(args)
        action = args.profiles_action
        if action == "get":
            pid = _profile_id(args, key)
            answer = call(
                args.api,
                key,
                "GET",
                f"/profiles/{urllib.parse.quote(pid)}",
                query={"cursor": args.cursor, "limit": args.limit},
            )
            print(json.dumps(answer, indent=2, ensure_ascii=False) if args.json else summarize(answer))
        elif action == "unmerge":
            body = {"merge_id": args.merge_id} if args.merge_id else {"absorbed_id": args.absorbed_id}
            answer = call(
                args.api, key, "POST", f"/profiles/{urllib.parse.quote(args.profile_id)}/unmerge", body=body
            )
            print(
                json.dumps(answer, indent=2)
                if args.json
                else f"unmerged {answer['restored_id']} from {answer['profile_id']} "
                f"(merge {answer['merge_id']})"
            )
        elif action == "erase":
            ident = _identifier(args)
            if ident is None:
                raise CliError("say who: --phone, --email, --user-id, --member-id or --type/--value")
            answer = call(
                args.api, key, "POST", "/profiles/erase", body={"type": ident[0], "value": ident[1]}
            )
            print(
                json.dumps(answer, indent=2)
                if args.json
                else f"erased profile {answer['profile_id']} ({len(answer['profile_ids'])} profile ids, "
                f"{answer['identifiers']} identifiers, {answer['items']} items)"
            )
        else:
            pid = _profile_id(args, key)
            answer = call(args.api, key, "GET", f"/profiles/{urllib.parse.quote(pid)}/export")
            text = json.dumps(answer, indent=2, ensure_ascii=False)
            if args.out:
                Path(args.out).write_text(text)
                print(f"wrote {args.out} ({len(answer.get('timeline', []))} timeline items)")
            else:
                print(text)
    except CliError as exc:
        print(f"huiliu profiles: {exc}", file=sys.stderr)
        return 1
    return 0


def summarize(view: dict[str, Any]) -> str:
    """A readable 360 view."""
    profile = view.get("profile", {})
    computed = profile.get("computed", {})
    lines = [
        f"Profile {view['profile_id']}"
        + (f"  (asked for {view['requested_id']})" if view.get("requested_id") != view["profile_id"] else "")
    ]
    lines.append(
        "  identifiers: " + ", ".join(f"{i['type']}={i['value']}" for i in view.get("identifiers", []))
    )
    if view.get("absorbed_ids"):
        lines.append("  absorbed:    " + ", ".join(view["absorbed_ids"]))
    if profile.get("traits"):
        lines.append("  traits:      " + json.dumps(profile["traits"], ensure_ascii=False, sort_keys=True))
    if profile.get("tags"):
        lines.append("  tags:        " + ", ".join(profile["tags"]))
    if profile.get("consent"):
        lines.append(
            "  consent:     "
            + ", ".join(f"{c}={'yes' if v.get('granted') else 'no'}" for c, v in profile["consent"].items())
        )
    figures = [
        f"{k}={computed[k]}"
        for k in (
            "event_count",
            "order_count",
            "revenue_total",
            "avg_order_value",
            "last_order_at",
            "last_seen",
        )
        if k in computed
    ]
    if figures:
        lines.append("  computed:    " + ", ".join(figures))
    for merge in view.get("merges", []):
        lines.append(
            f"  merge {merge['merge_id']}: {merge['absorbed_id']} -> {merge['survivor_id']}"
            f" at {merge['merged_at']} [{merge['status']}]"
        )
    lines.append("  timeline (newest first):")
    for item in view.get("timeline", []):
        name = item.get("event") or item.get("type")
        lines.append(f"    {item.get('timestamp')}  {name}  ({item.get('source', {}).get('connector', '?')})")
    if view.get("next_cursor"):
        lines.append(f"  more: --cursor '{view['next_cursor']}'")
    return "\n".join(lines)
