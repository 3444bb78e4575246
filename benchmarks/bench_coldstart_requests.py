"""The first request a cold HTTP function serves in the cold-start bench, and the AWS it talks to.

A cold admin or ops container does more than import its handler: its first invocation authenticates
the caller, mounts and validates the route, builds the route's collaborators and calls DynamoDB.
Measuring the import alone would reward deferring everything to the first request, so for the
functions listed in :data:`FIRST_REQUESTS` the bench times import + clients + one typical request.

AWS is a canned DynamoDB on a local port (:class:`CannedAws`): the real botocore path (serialise,
sign, HTTP, parse) runs, but with answers fixed in advance, so the sample measures our code, not a
network. The request must answer 200, else the bench fails: an error path is not the cold path.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TENANT = "bench-shop"
BENCH_KEY = "hl_bench0123456789abcdef0123456789abcdef"
SALT = "bench-salt"
BEARER = f"Bearer {BENCH_KEY}"


def _http_event(method: str, path: str, *, prefix: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"ANY {prefix}/{{proxy+}}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **headers},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "bench-1",
            "routeKey": f"ANY {prefix}/{{proxy+}}",
            "stage": "$default",
            # the ops route's AWS_IAM authorizer puts the caller here (API Gateway does, in AWS)
            "authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:user/bench"}},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _admin(path: str) -> tuple[dict[str, Any], str]:
    return _http_event("GET", path, prefix="/admin", headers={"authorization": BEARER}), f"GET {path}"


# Function logical id -> the first requests measured, each in its own cold container: typical routes
# of each HTTP API. The admin console's segment list (key lookup, then the segments stage's store,
# compiler and contracts), its report, its key list; an operator listing a tenant's keys.
FIRST_REQUESTS: dict[str, list[tuple[dict[str, Any], str]]] = {
    "AdminFunction": [_admin("/admin/segments"), _admin("/admin/reports"), _admin("/admin/keys")],
    "OpsFunction": [
        (
            _http_event("GET", f"/ops/tenants/{TENANT}/keys", prefix="/ops", headers={}),
            f"GET /ops/tenants/{TENANT}/keys",
        )
    ],
}


def _key_item() -> dict[str, Any]:
    """The stored record of BENCH_KEY (admin scope), as DynamoDB returns it."""
    from boto3.dynamodb.types import TypeSerializer
    from huiliu.tenants.models import ApiKey
    from huiliu.tenants.repository import hash_key

    digest = hash_key(BENCH_KEY, SALT)
    record = ApiKey(
        key_id=digest[:12],
        key_hash=digest,
        tenant_id=TENANT,
        scope="admin",
        name="bench",
        created_at="2026-01-01T00:00:00+00:00",
        prefix=BENCH_KEY[:8],
    ).model_dump(mode="json")
    item = {"pk": f"APIKEY#{digest}", "sk": "APIKEY", **record}
    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in item.items()}


class CannedAws:
    """A DynamoDB endpoint with fixed answers: the bench key's record for its GetItem, nothing else
    found (GetItem: no item, Query: no items, BatchGetItem: no responses)."""

    def __init__(self) -> None:
        key_item = _key_item()
        self.calls: list[str] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                operation = (self.headers.get("x-amz-target") or ".").rsplit(".", 1)[-1]
                calls.append(operation)
                if operation == "GetItem":
                    pk = request.get("Key", {}).get("pk", {}).get("S", "")
                    answer: dict[str, Any] = {"Item": key_item} if pk == key_item["pk"]["S"] else {}
                elif operation == "Query":
                    answer = {"Items": [], "Count": 0, "ScannedCount": 0}
                elif operation == "BatchGetItem":
                    answer = {"Responses": {}, "UnprocessedKeys": {}}
                else:
                    answer = {}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> CannedAws:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def env(aws: CannedAws) -> dict[str, str]:
    """What the function's environment adds for its first request: the canned endpoint, the salt."""
    return {"AWS_ENDPOINT_URL": aws.url, "HASH_SALT": SALT}
