"""``huiliu journeys apply|validate|list|show|pause|resume|archive|funnel|why``.

Talks to the admin HTTP API (``/admin/journeys/...``) like ``huiliu profiles``. ``apply`` reads
YAML or JSON files (or a directory of them; ``--examples`` for the three shipped classics) and
publishes each as a new version; a refused definition prints each problem as ``path: reason``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from huiliu_infra.cli_profiles import CliError, _add_common, _key, call


def load_definitions(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) for every YAML/JSON file named or found in a named directory."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        elif path.exists():
            files.append(path)
        else:
            raise CliError(f"no such file: {raw}")
    docs: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".json":
            loaded: Any = json.loads(text)
        else:
            import yaml

            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
        for i, doc in enumerate(loaded if isinstance(loaded, list) else [loaded]):
            if not isinstance(doc, dict):
                raise CliError(f"{file}: document {i} is not a mapping")
            docs.append((f"{file}" + (f"#{i}" if i else ""), doc))
    return docs


def _problems(exc: CliError) -> str:
    problems = getattr(exc, "problems", None)  # admin_client.Refused: the API's problems by path
    if problems:
        return "\n".join(f"  {p.get('path') or '(definition)'}: {p.get('reason')}" for p in problems)
    text = str(exc)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            return text
        problems = body.get("problems") or []
        if problems:
            return "\n".join(f"  {p['path'] or '(definition)'}: {p['reason']}" for p in problems)
        return f"  {body.get('message', text)}"
    return text


def format_funnel(f: dict[str, Any]) -> str:
    lines = [
        f"journey {f['journey_id']}: entered {f['entered']}, completed {f['completed']}, "
        f"converted {f['converted']}, messages requested {f['messages_requested']}"
    ]
    for step in f["steps"]:
        lines.append(f"  step {step['step']:<24} reached {step['reached']}")
    for reason, n in f["exited"].items():
        lines.append(f"  exited {reason:<22} {n}")
    held = f["holdout"]
    if held["entered"]:
        rate = f["conversion_rate"]
        hold = f["holdout_conversion_rate"]
        lines.append(
            f"  holdout: entered {held['entered']}, converted {held['converted']}"
            f" | conversion treated {rate:.1%} vs holdout {hold:.1%}, lift {f['lift']:+.1%}"
            if rate is not None and hold is not None
            else f"  holdout: entered {held['entered']}, converted {held['converted']}"
        )
    return "\n".join(lines)


def format_why(answer: dict[str, Any]) -> str:
    lines = [f"profile {answer['profile_id']}"]
    for e in answer["enrollments"]:
        state = e["status"] + (f" ({e['exit_reason']})" if e.get("exit_reason") else "")
        where = f" at {e['step']} until {e['next_at']}" if e.get("next_at") else ""
        inst = f" instance {e['instance']}" if e.get("instance") else ""
        lines.append(f"  {e['journey_id']} v{e['journey_version']}{inst}: {state}{where}")
        for line in e["log"]:
            extra = {k: v for k, v in line.items() if k not in ("at", "step", "what")}
            detail = " ".join(f"{k}={v}" for k, v in extra.items())
            lines.append(
                f"    {line['at'][:19]} {line.get('step') or '-':<16} {line['what']} {detail}".rstrip()
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        key = _key(args)
        action = args.journeys_action
        out: Any
        if action in ("apply", "validate"):
            paths = list(args.paths)
            if getattr(args, "examples", False):
                from huiliu.journeys.examples import HERE

                paths.append(str(HERE))
            if not paths:
                raise CliError("name files or a directory (or --examples)")
            failed = 0
            migrate = _migrate_request(args)
            for source, doc in load_definitions(paths):
                if migrate is not None:
                    doc = {**doc, "migrate": migrate}
                path = "/journeys/validate" if action == "validate" else "/journeys"
                try:
                    answer = call(args.api, key, "POST", path, body=doc)
                except CliError as exc:
                    failed += 1
                    print(f"{source}: refused\n{_problems(exc)}", file=sys.stderr)
                    continue
                if args.json:
                    print(json.dumps(answer, indent=2))
                elif action == "validate":
                    print(f"{source}: valid ({answer['journey_id']})")
                else:
                    what = "published" if answer["changed"] else "unchanged"
                    print(
                        f"{source}: {answer['journey_id']} v{answer['version']} {what} ({answer['status']})"
                    )
                    if answer.get("migrates"):
                        plan = answer["migrates"]
                        steps = ", ".join(f"{a} -> {b}" for a, b in plan["steps"].items())
                        print(f"  running enrollments of v{plan['version']} migrate ({steps})")
            return 1 if failed else 0
        if action == "list":
            out = call(args.api, key, "GET", "/journeys")
            if not args.json:
                for j in out["journeys"]:
                    print(f"{j['journey_id']:<24} v{j['active_version']:<3} {j['status']:<9} {j['name']}")
                return 0
        elif action == "show":
            out = call(args.api, key, "GET", f"/journeys/{urllib.parse.quote(args.journey_id)}")
            if not args.json:
                print(f"{out['journey_id']} v{out['active_version']} {out['status']}: {out['name']}")
                print(f"  versions: {', '.join(str(v['version']) for v in out['versions'])}")
                print(format_funnel(out["funnel"]))
                for e in out["recent_enrollments"][:10]:
                    held = " (holdout)" if e["holdout"] else ""
                    print(f"  enrolled {e['entered_at'][:19]} profile {e['profile_id']}{held}")
                return 0
        elif action in ("pause", "resume", "archive"):
            out = call(args.api, key, "POST", f"/journeys/{urllib.parse.quote(args.journey_id)}/{action}")
            if not args.json:
                print(f"{out['journey_id']}: {out['status']}")
                return 0
        elif action == "funnel":
            out = call(args.api, key, "GET", f"/journeys/{urllib.parse.quote(args.journey_id)}/funnel")
            if not args.json:
                print(format_funnel(out))
                return 0
        else:  # why
            out = call(
                args.api,
                key,
                "GET",
                f"/journeys/why/{urllib.parse.quote(args.profile_id)}",
                query={"journey_id": args.journey},
            )
            if not args.json:
                print(format_why(out))
                return 0
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _migrate_request(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--migrate`` (wait steps map by id) and ``--map OLD=NEW`` (explicit, implies --migrate)."""
    pairs = list(getattr(args, "map", None) or [])
    if not pairs and not getattr(args, "migrate", False):
        return None
    steps: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise CliError(f"--map {pair!r}: expected OLD_STEP=NEW_STEP")
        steps[old] = new
    return {"steps": steps}


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("journeys", help="marketing journeys: apply, list, funnel, why")
    sub = parser.add_subparsers(dest="journeys_action", required=True)
    for name, text in (
        ("apply", "publish definitions (YAML/JSON files or directories)"),
        ("validate", "check definitions without publishing"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("paths", nargs="*", help="files or directories")
        p.add_argument(
            "--examples", action="store_true", help="the three classic journeys shipped with Huiliu"
        )
        p.add_argument(
            "--migrate",
            action="store_true",
            help="move running enrollments onto the new version (every wait step must map)",
        )
        p.add_argument(
            "--map", action="append", metavar="OLD=NEW", help="map a wait step (implies --migrate)"
        )
        _add_common(p)
        p.set_defaults(func=run)
    p = sub.add_parser("list", help="every journey with its status and version")
    _add_common(p)
    p.set_defaults(func=run)
    for name, text in (
        ("show", "definition, versions, funnel and recent enrollments"),
        ("pause", "stop new enrollments; waiting ones hold"),
        ("resume", "resume a paused journey (held waits continue)"),
        ("archive", "end a journey: waiting enrollments exit when they come due"),
        ("funnel", "entered / per step / exited by reason / converted / messages"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("journey_id")
        _add_common(p)
        p.set_defaults(func=run)
    p = sub.add_parser("why", help="one person's enrollments and the decision log of each")
    p.add_argument("profile_id")
    p.add_argument("--journey", help="only this journey")
    _add_common(p)
    p.set_defaults(func=run)
    return parser
