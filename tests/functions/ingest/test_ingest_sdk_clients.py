"""The official Segment and RudderStack Python clients, pointed at Huiliu, work unchanged.

A local HTTP server turns each request into an API Gateway v2 event and calls the ingest Lambda
handler with it, its pipeline injected with in-memory collaborators (``stage.configure``).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from huiliu import stage
from huiliu.bus import MemoryPublisher
from huiliu.ingest.fakes import StaticDirectory, memory_pipeline
from huiliu.ingest.http import ApiGatewayIngest
from huiliu.ingest.pipeline import IngestPipeline
from huiliu.tenants import TenantSettings, new_demo_secrets

from tests.functions.ingest.ingest_helpers import load_function

SECRETS = new_demo_secrets()


@pytest.fixture
def served() -> Iterator[tuple[str, IngestPipeline]]:
    pipeline = memory_pipeline(StaticDirectory({"acme": (TenantSettings(tenant_id="acme"), SECRETS)}))
    app = load_function("ingest")
    stage.configure("ingest", service=ApiGatewayIngest(pipeline))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            event = {
                "rawPath": self.path.split("?")[0],
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "requestContext": {"http": {"method": "POST"}, "requestId": "r"},
                "body": base64.b64encode(body).decode(),
                "isBase64Encoded": True,
            }
            reply = app.handler(event, None)
            data = reply["body"].encode()
            self.send_response(reply["statusCode"])
            self.send_header("content-type", reply["headers"]["content-type"])
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pipeline
    server.shutdown()
    server.server_close()
    stage.configure("ingest")


def details(pipeline: IngestPipeline) -> list[dict]:
    assert isinstance(pipeline.publisher, MemoryPublisher)
    return [e.detail for e in pipeline.publisher.events]


@pytest.mark.parametrize("gzip", [False, True])
def test_given_segment_analytics_python_when_it_sends_identify_and_track_then_huiliu_ingests_them(
    served: tuple[str, IngestPipeline], gzip: bool
) -> None:
    from segment.analytics import Client

    host, pipeline = served
    assert SECRETS.segment
    errors: list[Exception] = []
    client = Client(
        SECRETS.segment.write_key,
        host=host,
        sync_mode=True,
        gzip=gzip,
        max_retries=0,
        on_error=lambda e, _: errors.append(e),
    )

    client.identify("u-1", {"email": "Ada@Example.com", "phone": "13800138000"})
    client.track("u-1", "Order Completed", {"order_id": "o-1", "revenue": 10})
    client.flush()

    assert errors == []
    found = details(pipeline)
    assert [d["type"] for d in found] == ["identify", "track"]
    assert {"type": "email", "value": "ada@example.com"} in found[0]["identifiers"]
    assert found[1]["event"] == "Order Completed"


def test_given_rudder_sdk_python_with_its_default_gzip_when_it_sends_then_huiliu_ingests_them(
    served: tuple[str, IngestPipeline],
) -> None:
    from rudderstack.analytics.client import Client

    host, pipeline = served
    assert SECRETS.segment
    errors: list[Exception] = []
    client = Client(
        SECRETS.segment.write_key,
        host=host,
        sync_mode=True,
        max_retries=0,
        on_error=lambda e, _: errors.append(e),
    )

    client.identify("u-2", {"email": "bob@example.com"})
    client.page("u-2", name="Pricing", properties={"url": "https://x.example/pricing"})
    client.flush()

    assert errors == []
    assert [d["type"] for d in details(pipeline)] == ["identify", "page"]


def test_given_a_wrong_write_key_when_the_segment_client_sends_then_it_reports_an_api_error(
    served: tuple[str, IngestPipeline],
) -> None:
    from segment.analytics import Client
    from segment.analytics.request import APIError

    host, pipeline = served
    client = Client("wrong", host=host, sync_mode=True, max_retries=0)

    with pytest.raises(APIError) as caught:
        client.track("u-1", "X")

    assert caught.value.status == 401
    assert caught.value.code == "invalid_write_key"
    assert details(pipeline) == []
