"""Small HTTP and polling helpers for integration tests."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def segment_call(api_url: str, write_key: str, call: str, payload: dict[str, Any]) -> tuple[int, Any]:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    status, _, raw = http(
        "POST",
        f"{api_url}/v1/{call}",
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )
    return status, json.loads(raw) if raw else None


def eventually[T](probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy (the pipeline is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def identity_item(runtime: Any, pk: str, sk: str) -> dict[str, Any] | None:
    """One item of the identity table, as plain Python values."""
    from huiliu import aws
    from huiliu.storage.dynamo import deserialize

    table = runtime.deployment.tables["IdentityTable"]
    found = (
        aws.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
    )
    return deserialize(found) if found else None


def identity_markers(runtime: Any) -> list[dict[str, Any]]:
    """What of every identity item says an event was applied (a scan: tests only; keys, message id,
    connector and out-events — what ``huiliu.identity.repository.processed_keys`` reads)."""
    from huiliu import aws
    from huiliu.storage.dynamo import deserialize

    table = runtime.deployment.tables["IdentityTable"]
    items: list[dict[str, Any]] = []
    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table,
            ProjectionExpression="pk, sk, message_id, #src.connector, #out",
            ExpressionAttributeNames={"#src": "source", "#out": "out"},
        )
    )
    for page in pages:
        items += [deserialize(i) for i in page["Items"]]
    return items
