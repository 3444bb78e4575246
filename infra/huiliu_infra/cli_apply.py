"""``huiliu apply -f DIR [--dry-run]``: segments, journeys, templates and tenant settings as YAML in git.

Every ``*.yaml``/``*.yml`` under DIR holds one or more documents (``---``)::

    kind: journey            # settings | template | segment | journey
    definition: {id: winback, ...}     # templates, segments, journeys: the definition, with its id

    kind: settings
    settings: {timezone: Asia/Shanghai, quiet_hours: {start: "21:00", end: "08:00"}}

Everything is validated first — YAML, shape, duplicate ids, then each definition by the admin
API's own validator (``POST /admin/<kind>s/validate`` or ``?dry_run=true``, whichever the API's
OpenAPI document offers) — and an invalid file fails with ``file: path: reason`` before anything
is written. Then it applies in dependency order: settings, templates, segments, journeys (a journey
names segments and templates; a journey's reference to a segment or template defined in the same
DIR is accepted by validation). ``--dry-run`` prints the diff against what the API holds instead.
Settings keys not in the file keep their current values. Works against the local runtime
(``--local``, the default) or a deployed stack (``--stack NAME --key KEY``).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huiliu_infra.admin_client import AdminApi, CliError, add_target

ORDER = ("settings", "template", "segment", "journey")
COLLECTIONS = {"template": "/templates", "segment": "/segments", "journey": "/journeys"}
ID_PATTERN_MAX = 128


@dataclass
class Problem:
    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '(document)'}: {self.reason}"


@dataclass
class Item:
    kind: str
    id: str
    file: str
    content: dict[str, Any]
    where: str = ""  # "doc 2" for a file with several documents

    @property
    def label(self) -> str:
        return f"{self.kind} {self.id}" if self.kind != "settings" else "settings"


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# ------------------------------------------------------------------ reading and local checks
def load(directory: Path) -> Plan:
    import yaml

    plan = Plan()
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        plan.problems.append(Problem(str(directory), "", "no .yaml or .yml files"))
    seen: dict[tuple[str, str], str] = {}
    for path in files:
        name = str(path)
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            plan.problems.append(Problem(name, where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            plan.problems.append(Problem(name, "", f"cannot read: {exc}"))
            continue
        for index, doc in enumerate(documents):
            prefix = f"[{index}]." if len(documents) > 1 else ""
            item = _item(name, prefix, doc, plan.problems)
            if item is None:
                continue
            key = (item.kind, item.id)
            if key in seen:
                plan.problems.append(
                    Problem(name, f"{prefix}definition.id", f"{item.label} also in {seen[key]}")
                )
                continue
            seen[key] = name
            item.where = prefix
            plan.items.append(item)
    plan.items.sort(key=lambda i: (ORDER.index(i.kind), i.id))
    return plan


def _item(name: str, prefix: str, doc: Any, problems: list[Problem]) -> Item | None:
    if not isinstance(doc, dict):
        problems.append(Problem(name, prefix.rstrip("."), "a document is a mapping with `kind`"))
        return None
    kind = doc.get("kind")
    if kind not in ORDER:
        problems.append(Problem(name, f"{prefix}kind", f"must be one of {', '.join(ORDER)} (got {kind!r})"))
        return None
    body_key = "settings" if kind == "settings" else "definition"
    extra = sorted(set(doc) - {"kind", body_key})
    if extra:
        problems.append(
            Problem(name, f"{prefix}{extra[0]}", f"unknown key (a {kind} file has kind and {body_key})")
        )
        return None
    content = doc.get(body_key)
    if not isinstance(content, dict):
        problems.append(Problem(name, f"{prefix}{body_key}", "missing, or not a mapping"))
        return None
    if kind == "settings":
        return Item("settings", "settings", name, content)
    ident = content.get("id")
    if not isinstance(ident, str) or not ident or len(ident) > ID_PATTERN_MAX:
        problems.append(Problem(name, f"{prefix}definition.id", "every definition needs an id (a string)"))
        return None
    return Item(kind, ident, name, content)


# ------------------------------------------------------------------ the API's contract
class Routes:
    """What the admin API offers, read from its OpenAPI document (routes land stage by stage)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.paths: dict[str, dict[str, Any]] = doc.get("paths", {})

    def has(self, method: str, path: str) -> bool:
        return method.lower() in self.paths.get(path, {})

    def query_params(self, method: str, path: str) -> set[str]:
        op = self.paths.get(path, {}).get(method.lower(), {})
        return {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}

    def wraps_definition(self, path: str) -> bool:
        """Does POST path take ``{"definition": ...}`` (else the definition itself)?"""
        op = self.paths.get(path, {}).get("post", {})
        schema = (
            (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema", {})
        )
        if "$ref" in schema:
            schema = (
                self.doc.get("components", {}).get("schemas", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
            )
        return "definition" in (schema.get("properties") or {})

    def body(self, item: Item) -> Any:
        if item.kind == "settings":
            return item.content
        collection = COLLECTIONS[item.kind]
        return {"definition": item.content} if self.wraps_definition(collection) else item.content


def _remote_problems(item: Item, status: int, body: Any) -> list[Problem]:
    where = item.where
    if not isinstance(body, dict):
        return [Problem(item.file, where, f"HTTP {status}")]
    found = []
    for entry in body.get("problems") or body.get("errors") or []:
        path = str(entry.get("path") or entry.get("field") or "")
        for head in ("body.definition.", "body.definition", "body."):
            if path.startswith(head):
                path = path[len(head) :]
                break
        base = "settings" if item.kind == "settings" else "definition"
        found.append(
            Problem(item.file, f"{where}{base}{'.' + path if path else ''}", str(entry.get("reason")))
        )
    return found or [Problem(item.file, where, f"HTTP {status}: {body.get('message') or body.get('code')}")]


def validate_remote(api: AdminApi, routes: Routes, plan: Plan) -> list[str]:
    """Each item through the API's validator; returns warnings (a kind with no validator)."""
    warnings = []
    for item in plan.items:
        if item.kind == "settings":
            current = api.ok("GET", "/tenant/settings")
            status, body = api.request(
                "PUT", "/tenant/settings", query={"dry_run": "true"}, body={**current, **item.content}
            )
            if status >= 400:
                plan.problems.extend(_remote_problems(item, status, body))
            continue
        collection = COLLECTIONS[item.kind]
        if not routes.has("post", collection):
            plan.problems.append(
                Problem(
                    item.file,
                    item.where,
                    f"the admin API has no POST /admin{collection} (stage not deployed?)",
                )
            )
            continue
        if routes.has("post", f"{collection}/validate"):
            status, body = api.request("POST", f"{collection}/validate", body=routes.body(item))
        elif "dry_run" in routes.query_params("post", collection):
            status, body = api.request("POST", collection, query={"dry_run": "true"}, body=routes.body(item))
        else:
            warnings.append(f"{item.kind}s: the API offers no validator; checked locally only")
            continue
        if status >= 400 or (isinstance(body, dict) and body.get("valid") is False):
            problems = [p for p in _remote_problems(item, status, body) if not _defined_here(p, plan)]
            plan.problems.extend(problems)
    return sorted(set(warnings))


UNKNOWN_REFERENCE = re.compile(r"unknown (segment|template) '([^']+)'")


def _defined_here(problem: Problem, plan: Plan) -> bool:
    """A reference to a segment or template this same apply creates (applied before journeys)."""
    found = UNKNOWN_REFERENCE.search(problem.reason)
    return bool(found) and any(i.kind == found.group(1) and i.id == found.group(2) for i in plan.items)


# ------------------------------------------------------------------ diff and apply
def _current(api: AdminApi, item: Item) -> dict[str, Any] | None:
    if item.kind == "settings":
        return api.ok("GET", "/tenant/settings")
    status, body = api.request("GET", f"{COLLECTIONS[item.kind]}/{item.id}")
    if status == 404 or not isinstance(body, dict):
        return None
    if status >= 400:
        raise CliError(f"GET /admin{COLLECTIONS[item.kind]}/{item.id} -> HTTP {status}")
    for key in ("definition", "head", "current", item.kind):
        inner = body.get(key)
        if isinstance(inner, dict):
            return inner.get("definition") if isinstance(inner.get("definition"), dict) else inner
    return body


def _dump(value: Any) -> list[str]:
    import yaml

    return yaml.safe_dump(value, sort_keys=True, allow_unicode=True, default_flow_style=False).splitlines()


def diff(api: AdminApi, item: Item) -> list[str]:
    current = _current(api, item)
    desired = item.content
    if item.kind == "settings" and current is not None:
        desired = {**current, **item.content}
        current = {k: current.get(k) for k in item.content}
        desired = {k: desired[k] for k in item.content}
    if current is None:
        return [f"+ {item.label} (new, from {item.file})", *(f"+   {line}" for line in _dump(desired))]
    lines = list(
        difflib.unified_diff(
            _dump(current), _dump(desired), f"{item.label} (API)", f"{item.label} ({item.file})", lineterm=""
        )
    )
    return lines or [f"= {item.label} unchanged"]


def apply_item(api: AdminApi, routes: Routes, item: Item) -> str:
    if item.kind == "settings":
        current = api.ok("GET", "/tenant/settings")
        api.ok("PUT", "/tenant/settings", body={**current, **item.content})
        return "settings applied"
    answer = api.ok("POST", COLLECTIONS[item.kind], body=routes.body(item))
    version = answer.get("version") if isinstance(answer, dict) else None
    return f"{item.label} applied" + (f" (version {version})" if version is not None else "")


# ------------------------------------------------------------------ command
def register(sub: Any) -> None:
    parser = sub.add_parser("apply", help="apply segments, journeys, templates and settings from YAML files")
    parser.add_argument("-f", "--file", dest="directory", required=True, help="a directory of YAML files")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the diff; change nothing")
    add_target(parser)
    parser.set_defaults(func=cmd_apply)


def run(api: AdminApi, directory: Path, *, dry_run: bool, out: Any = print, err: Any = None) -> int:
    err = err or (lambda text: print(text, file=sys.stderr))
    plan = load(directory)
    if plan.problems:
        for problem in plan.problems:
            err(str(problem))
        err(f"{len(plan.problems)} problem(s): nothing applied")
        return 1
    routes = Routes(api.ok("GET", "/openapi.json"))
    for warning in validate_remote(api, routes, plan):
        err(f"warning: {warning}")
    if plan.problems:
        for problem in plan.problems:
            err(str(problem))
        err(f"{len(plan.problems)} problem(s): nothing applied")
        return 1
    if dry_run:
        for item in plan.items:
            for line in diff(api, item):
                out(line)
        out(f"dry run: {len(plan.items)} item(s) valid; nothing applied")
        return 0
    for item in plan.items:
        out(apply_item(api, routes, item))
    kinds = ", ".join(k for k in ORDER if any(i.kind == k for i in plan.items))
    out(f"applied {len(plan.items)} item(s) in order: {kinds}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    try:
        return run(AdminApi.from_args(args), Path(args.directory), dry_run=args.dry_run)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return 1
