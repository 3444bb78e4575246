"""Admin API test helpers: the real admin handler on moto, two tenants with data, HTTP-shaped calls."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.functions.ingest.ingest_helpers import LambdaContext, load_function


@dataclass
class Reply:
    status: int
    body: Any
    raw: str
    headers: dict[str, str] = field(default_factory=dict)


def http_event(
    method: str,
    path: str,
    *,
    key: str | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": headers,
        "queryStringParameters": dict(query) if query else None,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "r1",
            "routeKey": "ANY /admin/{proxy+}",
            "stage": "$default",
        },
        "body": text,
        "isBase64Encoded": False,
    }


class AdminClient:
    """Calls functions/admin/app.py's handler in process (moto behind it)."""

    def __init__(self, *, check_contract: bool = True) -> None:
        from huiliu import stage
        from huiliu.adminapi.wiring import STAGE

        self.check_contract = check_contract

        stage.configure(STAGE)  # a fresh admin slot: collaborators built on first use
        self.module = load_function("admin")

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Reply:
        response = self.module.handler(
            http_event(method, path, key=key, **kwargs), LambdaContext(function_name="admin")
        )
        raw = response.get("body") or ""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if self.check_contract and path.startswith("/admin/"):
            # every answer of every admin test matches what /admin/openapi.json documents for it
            from tests.functions.admin.openapi_contract import contract_of

            contract_of(self.module).check(method, path, response["statusCode"], body)
        return Reply(response["statusCode"], body, raw, response.get("headers") or {})
