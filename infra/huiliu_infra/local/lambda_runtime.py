"""Running Lambda handlers in process: module loading, a LambdaContext, API Gateway v2 events."""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from huiliu_infra.local.provision import ROOT, FunctionSpec, RouteSpec

_load_lock = threading.Lock()
_modules: dict[str, ModuleType] = {}


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from a real Lambda context."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    started: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


def load_handler(spec: FunctionSpec, root: Path = ROOT) -> Any:
    """Import ``<code_dir>/<module>.py`` under a unique module name and return the handler."""
    module_name, func_name = spec.handler.rsplit(".", 1)
    key = f"huiliu_fn_{spec.logical}"
    with _load_lock:
        module = _modules.get(key)
        if module is None:
            path = root / spec.code_dir / f"{module_name.replace('.', '/')}.py"
            loader_spec = importlib.util.spec_from_file_location(key, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load handler {spec.handler} from {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[key] = module
            loader_spec.loader.exec_module(module)
            _modules[key] = module
    return getattr(module, func_name)


def unload_handlers() -> None:
    """Forget loaded handler modules (and their cached clients), and the stage runner's services:
    they live in huiliu.stage, not in the handler module, and hold clients for the old endpoint."""
    with _load_lock:
        for key in list(_modules):
            sys.modules.pop(key, None)
        _modules.clear()
        # The stage slots (every stage's services, the admin API's collaborators) outlive them.
        stage = sys.modules.get("huiliu.stage")
        if stage is not None:
            stage.reset_all()  # type: ignore[attr-defined]


def make_context(spec: FunctionSpec, region: str, account: str = "123456789012") -> LambdaContext:
    return LambdaContext(
        function_name=spec.name,
        memory_limit_in_mb=spec.memory,
        invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:{spec.name}",
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=spec.timeout,
        started=time.monotonic(),
        log_group_name=f"/aws/lambda/{spec.name}",
    )


# ------------------------------------------------------------------ HTTP API routing
def _route_regex(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{_param_name(segment[1:-2])}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{_param_name(segment[1:-1])}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


def _param_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _specificity(route: RouteSpec) -> tuple[int, int, int]:
    segments = route.path.strip("/").split("/")
    greedy = sum(1 for s in segments if s.endswith("+}"))
    literal = sum(1 for s in segments if not s.startswith("{"))
    return (-greedy, literal, 0 if route.method == "ANY" else 1)


class Router:
    """API Gateway HTTP API route selection: most specific route wins, then method over ANY."""

    def __init__(self, routes: list[RouteSpec]) -> None:
        self.routes = sorted(routes, key=_specificity, reverse=True)
        self._compiled = [(r, _route_regex(r.path)) for r in self.routes]

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        for route, regex in self._compiled:
            if route.method not in ("ANY", method.upper()):
                continue
            found = regex.match(path)
            if found:
                params = {}
                for segment in route.path.strip("/").split("/"):
                    if segment.startswith("{"):
                        raw = segment[1:-1]
                        params[raw] = found.group(_param_name(raw.rstrip("+")))
                return route, params
        return None


def http_api_event(
    *,
    route: RouteSpec,
    params: dict[str, str],
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    api_id: str = "local",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as the real service builds it."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[lname] = f"{merged[lname]},{value}" if lname in merged else value
    qs: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        qs[key] = f"{qs[key]},{value}" if key in qs else value
    try:
        text = body.decode("utf-8")
        is_b64 = False
    except UnicodeDecodeError:
        text = base64.b64encode(body).decode()
        is_b64 = True
    content_encoding = merged.get("content-encoding", "")
    if content_encoding and content_encoding != "identity":
        text = base64.b64encode(body).decode()
        is_b64 = True
    now = datetime.now(UTC)
    request_id = uuid.uuid4().hex[:16]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": api_id,
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": api_id,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    if cookies:
        event["cookies"] = cookies
    if qs:
        event["queryStringParameters"] = qs
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = text
    return event


def http_api_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Interpret a handler's return value as API Gateway HTTP API (2.0) does."""
    import json

    if isinstance(result, dict) and "statusCode" in result:
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(str(v) for v in values)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        if result.get("cookies"):
            headers["set-cookie"] = "; ".join(result["cookies"])
        return int(result["statusCode"]), headers, raw
    # No statusCode: API Gateway treats the value as a JSON 200 body.
    raw = result.encode() if isinstance(result, str) else json.dumps(result).encode()
    return 200, {"content-type": "application/json"}, raw
