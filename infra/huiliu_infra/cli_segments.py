"""``huiliu segments apply|list|show|delete|count|members|export|preview|why|models``.

Talks to the admin HTTP API (``/admin/segments/...``) like ``huiliu profiles``: ``--api`` and
``--key`` (default ``$HUILIU_ADMIN_KEY`` or the local runtime's ``.huiliu/local.json``).

    huiliu segments apply -f examples/segments/ --dry-run     # validate everything, show the diff
    huiliu segments apply -f examples/segments/vip.yaml        # save (new version) + backfill
    huiliu segments why vip --phone 13800138000                # which condition held or failed
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from huiliu_infra.admin_client import CliError, Refused, call
from huiliu_infra.cli_profiles import DEFAULT_API, _add_identifier_options, _key, _profile_id

SUFFIXES = (".yaml", ".yml", ".json")


def load_files(target: str) -> list[Any]:
    """Every definition in a file, or in the .yaml/.yml/.json files of a folder (sorted)."""
    from huiliu.segments.language import load_documents

    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise CliError(f"no .yaml/.yml/.json files in {target}")
    elif path.is_file():
        files = [path]
    else:
        raise CliError(f"no such file or folder: {target}")
    docs: list[Any] = []
    for file in files:
        try:
            docs += load_documents(file.read_text(encoding="utf-8"))
        except Exception as exc:  # a YAML syntax error names the file and line
            raise CliError(f"{file}: {exc}") from exc
    return docs


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=DEFAULT_API, help="API base URL (default %(default)s)")
    parser.add_argument(
        "--key", default=None, help="admin key (default: $HUILIU_ADMIN_KEY or .huiliu/local.json)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("segments", help="segment definitions, audiences, why")
    sub = parser.add_subparsers(dest="segments_action", required=True)

    apply = sub.add_parser("apply", help="validate and save definitions from a file or folder (YAML/JSON)")
    apply.add_argument("-f", "--file", required=True, help="a definition file or a folder of them")
    apply.add_argument("--dry-run", action="store_true", help="validate and show the diff; save nothing")
    sub.add_parser("list", help="every segment with its version and member count")
    for name, text in (
        ("show", "one segment: definition, version, count, backfill progress"),
        ("delete", "delete a segment (refused while another segment uses it)"),
        ("count", "member count (kept counters, no scan)"),
        ("export", "CSV of the members to S3 (exports/…), with a download URL"),
    ):
        sub.add_parser(name, help=text).add_argument("segment")
    members = sub.add_parser("members", help="a page of members")
    members.add_argument("segment")
    members.add_argument("--limit", type=int, default=50)
    members.add_argument("--cursor")
    preview = sub.add_parser("preview", help="count and sample of an unsaved definition")
    preview.add_argument("-f", "--file", required=True)
    why = sub.add_parser(
        "why", help="why a person is in a segment or not: each condition with the value seen"
    )
    why.add_argument("segment")
    _add_identifier_options(why)
    models = sub.add_parser("models", help="lifecycle thresholds and RFM breakpoints (--set FILE to change)")
    models.add_argument("--set", dest="models_file")
    for action in sub.choices.values():
        _common(action)
        action.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        key = _key(args)
        answer, text = _dispatch(args, key)
        print(json.dumps(answer, indent=2, ensure_ascii=False) if args.json else text)
    except Refused as exc:
        print(f"huiliu segments: refused: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem['path']}: {problem['reason']}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"huiliu segments: {exc}", file=sys.stderr)
        return 1
    return 0


def _seg(name: str) -> str:
    return "/segments/" + urllib.parse.quote(name, safe="")


def _dispatch(args: argparse.Namespace, key: str) -> tuple[Any, str]:
    api, action = args.api, args.segments_action
    if action == "apply":
        docs = load_files(args.file)
        answer = call(
            api,
            key,
            "POST",
            "/segments/apply",
            query={"dry_run": "true" if args.dry_run else None},
            body={"segments": docs},
        )
        return answer, format_apply(answer)
    if action == "list":
        answer = call(api, key, "GET", "/segments")
        rows = [f"{'segment':<28} {'version':>7} {'members':>8}  name"]
        rows += [f"{s['id']:<28} {s['version']:>7} {s['count']:>8}  {s['name']}" for s in answer["segments"]]
        return answer, "\n".join(rows)
    if action == "show":
        answer = call(api, key, "GET", _seg(args.segment))
        lines = [
            f"{answer['id']} v{answer['version']}: {answer['count']} members (updated {answer['updated_at']})"
        ]
        lines.append(json.dumps(answer["definition"], indent=2, ensure_ascii=False))
        for backfill in answer.get("backfills", []):
            lines.append(
                f"backfill {backfill.get('replay_id')}: {backfill.get('status')}, "
                f"{backfill.get('evaluated', 0)} profiles evaluated, {backfill.get('entered', 0)} entered"
                + (f" of {backfill['profiles']}" if backfill.get("profiles") is not None else "")
            )
        return answer, "\n".join(lines)
    if action == "delete":
        answer = call(api, key, "DELETE", _seg(args.segment))
        return (
            answer,
            f"deleted {answer['deleted']} (members leave as backfill {answer['backfill']['replay_id']} runs)",
        )
    if action == "count":
        answer = call(api, key, "GET", _seg(args.segment) + "/count")
        return answer, f"{answer['id']}: {answer['count']}"
    if action == "members":
        answer = call(
            api,
            key,
            "GET",
            _seg(args.segment) + "/members",
            query={"limit": args.limit, "cursor": args.cursor},
        )
        lines = [
            f"{m['profile_id']}  since {m.get('entered_at')}" + ("  (backfill)" if m.get("backfill") else "")
            for m in answer["members"]
        ]
        if answer.get("next_cursor"):
            lines.append(f"more: --cursor {answer['next_cursor']}")
        return answer, "\n".join(lines) or "(no members)"
    if action == "export":
        answer = call(api, key, "POST", _seg(args.segment) + "/export")
        return answer, f"{answer['rows']} rows -> s3 {answer['key']}\n{answer['location']}"
    if action == "preview":
        docs = load_files(args.file)
        if len(docs) != 1:
            raise CliError("preview takes one definition")
        answer = call(api, key, "POST", "/segments/preview", body=docs[0])
        lines = [f"{answer['id']}: {answer['matched']} of {answer['evaluated']} profiles sampled"]
        lines += [f"  {pid}" for pid in answer["sample"]]
        lines += [f"note: {n}" for n in answer.get("notes", [])]
        return answer, "\n".join(lines)
    if action == "why":
        pid = _profile_id(args, key)
        answer = call(api, key, "GET", _seg(args.segment) + "/why/" + urllib.parse.quote(pid, safe=""))
        return answer, format_why(answer)
    if args.models_file:
        docs = load_files(args.models_file)
        answer = call(api, key, "PUT", "/segments/models", body=docs[0])
    else:
        answer = call(api, key, "GET", "/segments/models")
    return answer, json.dumps(answer, indent=2)


def format_apply(answer: dict[str, Any]) -> str:
    lines = []
    for seg in answer["segments"]:
        lines.append(f"{seg['action']:>9}  {seg['id']} v{seg['version']}")
        lines += [f"           {line}" for line in seg.get("diff") or [] if seg["action"] == "updated"]
    if answer.get("dry_run"):
        lines.append("dry run: nothing saved")
    elif answer.get("backfill"):
        lines.append(f"backfill {answer['backfill']['replay_id']} started over existing profiles")
    return "\n".join(lines)


def _condition_text(condition: dict[str, Any]) -> str:
    return json.dumps(condition, ensure_ascii=False, separators=(", ", ": "))


def format_why(answer: dict[str, Any]) -> str:
    verdict = "IS" if answer["member"] else "is NOT"
    lines = [f"profile {answer['profile_id']} {verdict} in {answer['segment']} v{answer['version']}"]
    if answer.get("due_at"):
        lines.append(f"  may change by time alone at {answer['due_at']}")

    def walk(node: dict[str, Any], depth: int) -> None:
        mark = "✓" if node["held"] else "✗"
        pad = "  " * depth
        if node.get("children") is not None:  # the response model sends a leaf's children as null
            lines.append(f"{pad}{mark} {node['node']}")
            for child in node["children"]:
                walk(child, depth + 1)
        else:
            seen = json.dumps(node.get("seen"), ensure_ascii=False)
            lines.append(f"{pad}{mark} {_condition_text(node['condition'])}   seen: {seen}")

    walk(answer["explain"], 1)
    return "\n".join(lines)
