"""Checks of an admin answer against the OpenAPI document it is served with.

- ``untyped_operations(doc)``: every operation whose 2xx answer is not a model (no JSON schema, or an
  object schema without properties — ``dict[str, Any]``), or that lacks a documented error answer.
- ``Contract(doc).check(method, path, status, body)``: the body validates (jsonschema, draft 2020-12)
  against the schema the document gives that operation and status; an undocumented status fails.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

# every admin operation documents these error answers with the shared ErrorBody shape
ERROR_STATUSES = ("400", "401", "403", "404")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _untyped(doc: dict[str, Any], schema: dict[str, Any] | None) -> str | None:
    if not schema:
        return "no JSON schema"
    schema = _resolve(doc, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            reasons = [_untyped(doc, s) for s in schema[key] if s.get("type") != "null"]
            return next((r for r in reasons if r), None)
    if schema.get("type") == "object" and not schema.get("properties"):
        return "an untyped object (no properties, no model)"
    if schema.get("type") not in ("object", None) or "properties" not in schema:
        return f"not a model: {schema.get('type')}"
    return None


def untyped_operations(doc: dict[str, Any]) -> list[str]:
    problems = []
    for path, methods in doc.get("paths", {}).items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            responses = operation.get("responses", {})
            answers = {k: v for k, v in responses.items() if k.startswith("2")}
            if not answers:
                problems.append(f"{where}: no 2xx answer documented")
            for status, answer in answers.items():
                schema = (answer.get("content") or {}).get("application/json", {}).get("schema")
                reason = _untyped(doc, schema)
                if reason:
                    problems.append(f"{where} {status}: {reason}")
            for status in ERROR_STATUSES:
                schema = ((responses.get(status) or {}).get("content") or {}).get("application/json", {})
                if schema.get("schema") != {"$ref": "#/components/schemas/ErrorBody"}:
                    problems.append(f"{where}: {status} is not documented as ErrorBody")
    return problems


class Contract:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.checked: list[tuple[str, str, int]] = []
        self._routes = []
        for template in doc["paths"]:
            pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
            self._routes.append((template.count("{"), re.compile(pattern), template))
        self._routes.sort(key=lambda r: r[0])  # literal segments win: /segments/models before {segment_id}

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        path = path.split("?", 1)[0].removeprefix("/admin")
        for _, pattern, template in self._routes:
            operation = self.doc["paths"][template].get(method.lower())
            if pattern.match(path) and operation is not None:
                return template, operation
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        if path.split("?", 1)[0].endswith(("/openapi.json", "/docs")):
            return  # the document itself
        template, operation = self.operation(method, path)
        answer = operation["responses"].get(str(status))
        assert answer is not None, f"{method} {template} answered an undocumented {status}: {body}"
        schema = answer["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": self.doc["components"]})
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {template} {status}: " + "; ".join(
            f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:5]
        )
        self.checked.append((method.upper(), template, status))


_contracts: dict[int, tuple[Any, Contract]] = {}  # the target is held: its id is not reused


def documented_app(target: Any) -> Any:
    """The resolver a function's OpenAPI document describes: a handler module whose routers mount
    lazily (functions/admin/app.py: ``routers.document_app()``, every router), its ``app``, or a
    resolver itself."""
    routers = getattr(target, "routers", None)
    if routers is not None and hasattr(routers, "document_app"):
        return routers.document_app()
    return getattr(target, "app", target)


def document_of(target: Any, prefix: str = "/admin") -> dict[str, Any]:
    from huiliu.adminapi.core import openapi_document

    return openapi_document(documented_app(target), prefix)


def contract_of(target: Any) -> Contract:
    """The contract of a handler module or resolver (what its /admin/openapi.json says), built once."""
    if id(target) not in _contracts:
        _contracts[id(target)] = (target, Contract(document_of(target)))
    return _contracts[id(target)][1]
