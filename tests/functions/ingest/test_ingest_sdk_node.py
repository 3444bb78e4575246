"""The official Segment Node.js SDK (``@segment/analytics-node``) pointed at Huiliu works unchanged,
and Segment routes decide by the body, not the labels (issue 8, item 5).

The Node SDK posts ``/v1/batch`` as JSON with Basic auth *and* a body ``writeKey``. It is installed
from ``tests/sdk_node/package-lock.json`` with ``npm ci`` on first run (needs npm and the npm
registry once); without node/npm the Node test is skipped, the wire-format tests below still run.

Another official client family (PHP's curl consumer) sends its gzip-compressed JSON batch with
curl's default label ``Content-Type: application/x-www-form-urlencoded``; no PHP runtime is
available offline here, so that request is reproduced byte for byte on the wire instead.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from huiliu.ingest.pipeline import IngestPipeline

from tests.functions.ingest.test_ingest_sdk_clients import SECRETS, details, served  # noqa: F401

NODE_DIR = Path(__file__).resolve().parents[2] / "sdk_node"


def _node_sdk() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node/npm not installed")
    if not (NODE_DIR / "node_modules" / "@segment" / "analytics-node").exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=NODE_DIR,
            capture_output=True,
            timeout=240,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"npm ci failed (offline?): {done.stderr.decode()[-300:]}")
    return NODE_DIR


def test_segment_analytics_node_sends_a_batch_huiliu_ingests(served: tuple[str, IngestPipeline]) -> None:  # noqa: F811
    sdk = _node_sdk()
    host, pipeline = served
    assert SECRETS.segment
    env = {**os.environ, "HUILIU_HOST": host, "HUILIU_WRITE_KEY": SECRETS.segment.write_key}
    done = subprocess.run(["node", "send.js"], cwd=sdk, env=env, capture_output=True, timeout=60, check=True)
    lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    assert not [line for line in lines if "error" in line], lines
    assert {"done": True} in lines
    by_type = {d["type"]: d for d in details(pipeline)}
    assert set(by_type) == {"identify", "track", "page"}
    assert by_type["identify"]["traits"]["name"] == "节点"
    assert by_type["track"]["properties"] == {"order_id": "N1", "revenue": 12.5}
    assert by_type["page"]["event"] == "Home"
    assert by_type["page"]["properties"]["emoji"] == "😀"


def _post(host: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    assert SECRETS.segment
    auth = base64.b64encode(f"{SECRETS.segment.write_key}:".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - our own test server
        f"{host}/v1/batch", data=body, headers={"Authorization": f"Basic {auth}", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


BATCH = json.dumps({"batch": [{"type": "track", "userId": "php-1", "event": "Signed Up"}]}).encode()
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        # mtime=0: the same bytes in every pytest-xdist worker (ids must agree across workers)
        (gzip.compress(BATCH, mtime=0), {"Content-Type": FORM, "Content-Encoding": "gzip"}),  # curl's label
        (gzip.compress(BATCH, mtime=0), {"Content-Type": FORM}),  # gzip without Content-Encoding
        (gzip.compress(BATCH, mtime=0), {}),
        (BATCH, {"Content-Type": FORM}),
        (BATCH, {"Content-Type": "application/octet-stream"}),
    ],
    ids=["gzip-form-encoding", "gzip-form", "gzip-unlabelled", "json-form", "json-octet"],
)
def test_segment_routes_decide_by_the_body_not_the_label(
    served: tuple[str, IngestPipeline],  # noqa: F811
    body: bytes,
    headers: dict[str, str],
) -> None:
    host, pipeline = served
    status, reply = _post(host, body, headers)
    assert (status, reply) == (200, {"success": True})
    assert [d["traits"] or d["event"] for d in details(pipeline)] == ["Signed Up"]


def test_a_form_body_that_is_not_json_is_still_a_400(served: tuple[str, IngestPipeline]) -> None:  # noqa: F811
    host, _pipeline = served
    status, reply = _post(host, b"data=abc&x=1", {"Content-Type": FORM})
    assert status == 400
    assert reply["code"] == "invalid_json"
