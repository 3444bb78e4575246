"""``huiliu templates apply -f FILE|DIR | list | show ID | preview ID``: message templates.

A file (YAML or JSON) holds one template or a list; a folder, every ``*.yaml|*.yml|*.json`` in it.
Every template is validated by the admin API first (rendered against its ``sample`` in each
locale) and nothing is saved unless all are valid: a template referencing a variable its sample
lacks is refused here, with the locale and the variable named.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from huiliu_infra.admin_client import AdminApi, CliError, add_target


def load_templates(path: str) -> list[dict[str, Any]]:
    import yaml

    root = Path(path)
    files = (
        sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        if root.is_dir()
        else [root]
    )
    if not files:
        raise CliError(f"no template files under {path}")
    docs: list[dict[str, Any]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{file}: {exc}") from exc
        try:
            loaded = list(yaml.safe_load_all(text)) if file.suffix != ".json" else [json.loads(text)]
        except (ValueError, yaml.YAMLError) as exc:
            raise CliError(f"{file}: not valid YAML/JSON: {exc}") from exc
        for doc in loaded:
            for item in doc if isinstance(doc, list) else [doc]:
                if isinstance(item, dict) and item.get("kind") == "template" and "definition" in item:
                    item = item["definition"]  # `huiliu apply` documents work too
                if not isinstance(item, dict):
                    raise CliError(f"{file}: a template is a mapping")
                docs.append(item)
    return docs


def apply(api: AdminApi, docs: list[dict[str, Any]], out: Any = print) -> int:
    problems = []
    for doc in docs:
        status, body = api.request("POST", "/templates/validate", body=doc)
        if status >= 400:
            name = doc.get("template_id") or doc.get("id") or "?"
            for problem in (body or {}).get("problems") or [
                {"path": "", "reason": (body or {}).get("message")}
            ]:
                problems.append(f"{name}: {problem.get('path')}: {problem.get('reason')}")
    if problems:
        for line in problems:
            print(f"refused: {line}", file=sys.stderr)
        return 1
    for doc in docs:
        answer = api.ok("POST", "/templates", body=doc)
        out(f"{answer['template']['template_id']}: saved (version {answer['version']})")
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("templates", help="message templates: apply -f, list, show, preview")
    actions = parser.add_subparsers(dest="templates_action", required=True)
    apply_p = actions.add_parser("apply", help="validate and save templates from a file or folder")
    apply_p.add_argument("-f", "--file", required=True)
    actions.add_parser("list", help="every template with its version")
    show = actions.add_parser("show", help="one template")
    show.add_argument("template_id")
    preview = actions.add_parser("preview", help="render a saved template with its sample (or --vars JSON)")
    preview.add_argument("template_id")
    preview.add_argument("--locale")
    preview.add_argument("--vars", help='JSON, e.g. {"traits": {"name": "Li"}, "vars": {"coupon": "X"}}')
    for action in actions.choices.values():
        add_target(action)
        action.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        api = AdminApi.from_args(args)
        if args.templates_action == "apply":
            return apply(api, load_templates(args.file))
        if args.templates_action == "list":
            for t in api.ok("GET", "/templates")["templates"]:
                locales = ",".join(t["locales"])
                print(f"{t['id']:<28} v{t['version']:<4} {t['channel']:<8} {t['purpose']:<14} {locales}")
            return 0
        path = "/templates/" + urllib.parse.quote(args.template_id, safe="")
        if args.templates_action == "show":
            print(json.dumps(api.ok("GET", path), indent=2, ensure_ascii=False))
            return 0
        body = json.loads(args.vars) if args.vars else {}
        if args.locale:
            body["locale"] = args.locale
        print(json.dumps(api.ok("POST", path + "/preview", body=body), indent=2, ensure_ascii=False))
        return 0
    except CliError as exc:
        print(f"huiliu templates: {exc}", file=sys.stderr)
        return 1
