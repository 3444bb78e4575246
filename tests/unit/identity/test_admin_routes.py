"""Admin routes (Powertools router) and the ``huiliu profiles`` CLI against them over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from huiliu import stage
from huiliu.adminapi.core import build_app, resolve
from huiliu.adminapi.wiring import STAGE, AdminServices
from huiliu.bus import MemoryPublisher
from huiliu.clock import ManualClock
from huiliu.errors import Unauthorized
from huiliu.identity import admin_routes
from huiliu.identity.admin import ProfileAdmin
from huiliu.identity.repository import IdentityRepository
from huiliu.identity.service import IdentityService
from huiliu.models import DetailType
from huiliu.tenants.models import ApiKey
from huiliu_infra import cli_profiles

from tests.unit.identity.identity_helpers import TENANT, make_event

ADMIN_KEY = "hl_admin_test"


class _Keys:
    """One admin key of TENANT (the real authenticator is tested in tests/unit/core)."""

    def __call__(self, authorization: str | None) -> ApiKey:
        if authorization != f"Bearer {ADMIN_KEY}":
            raise Unauthorized("invalid key", reason="invalid_credentials")
        return ApiKey(key_id="k1", key_hash="h", tenant_id=TENANT, scope="admin", created_at="2026-01-01")


class _App:
    """The admin resolver with the profile routes, resolved through the admin gate."""

    def __init__(self) -> None:
        self.app = build_app(routers=[admin_routes.router])

    def resolve(self, event: dict, context: Any) -> dict:
        return resolve(self.app, event, context, _Keys())


def _build_app() -> Any:
    return _App()


def _apigw_event(method: str, raw_path: str, query: str, headers: dict[str, str], body: str | None) -> dict:
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p) if query else None
    from urllib.parse import unquote_plus

    return {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": {k: unquote_plus(v) for k, v in params.items()} if params else None,
        "requestContext": {
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "r1",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


class _Ctx:
    function_name = "admin"
    aws_request_id = "r1"


@pytest.fixture
def world(repo: IdentityRepository, service: IdentityService, clock: ManualClock) -> Iterator[dict[str, Any]]:
    publisher = MemoryPublisher()
    stage.configure(
        STAGE, service=AdminServices(profiles=ProfileAdmin(repo, clock=clock)), publisher=publisher
    )
    older = service.process(make_event(("email", "li@x.cn"), traits={"name": "Li"}, name="Signed Up"))
    clock.advance(timedelta(minutes=1))
    newer = service.process(make_event(("phone", "13800138000"), name="Order Completed", minutes=5))
    service.process(make_event(("email", "li@x.cn"), ("phone", "13800138000"), minutes=10))
    yield {
        "app": _build_app(),
        "publisher": publisher,
        "survivor": older.profile_id,
        "absorbed": newer.profile_id,
    }
    stage.configure(STAGE)


def _call(app: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    parts = urlsplit(path)
    event = _apigw_event(
        method,
        parts.path,
        parts.query,
        {"Authorization": f"Bearer {ADMIN_KEY}"},
        json.dumps(body) if body is not None else None,
    )
    response = app.resolve(event, _Ctx())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def test_given_a_phone_when_looked_up_then_the_360_view_of_the_survivor_is_returned(world: dict) -> None:
    status, body = _call(world["app"], "GET", "/admin/profiles/lookup?phone=%2B86%20138%200013%208000")

    assert status == 200
    assert body["profile_id"] == world["survivor"]
    assert body["absorbed_ids"] == [world["absorbed"]]
    assert len(body["timeline"]) == 3


def test_given_an_unknown_email_when_looked_up_then_404(world: dict) -> None:
    status, _ = _call(world["app"], "GET", "/admin/profiles/lookup?email=nobody@x.cn")

    assert status == 404


def test_given_a_bad_unmerge_body_then_400(world: dict) -> None:
    status, _ = _call(world["app"], "POST", f"/admin/profiles/{world['survivor']}/unmerge", {"oops": 1})

    assert status == 400


def test_given_a_bad_body_then_the_400_lists_fields_briefly_without_pydantic_urls(world: dict) -> None:
    status, body = _call(world["app"], "POST", "/admin/profiles/erase", {"type": "email", "oops": 1})

    assert status == 400
    message = body["message"]
    assert "http" not in message
    assert {"field": "body.value", "reason": "Field required"} in body["errors"]
    assert {"field": "body.oops", "reason": "Extra inputs are not permitted"} in body["errors"]


@pytest.mark.parametrize("limit", ["abc", "0", "201", "-3", "1.5"])
def test_given_a_bad_limit_then_400_naming_query_limit(world: dict, limit: str) -> None:
    for path in (f"/admin/profiles/{world['survivor']}", "/admin/profiles/lookup?email=li@x.cn&x=1"):
        sep = "&" if "?" in path else "?"
        status, body = _call(world["app"], "GET", f"{path}{sep}limit={limit}")

        assert status == 400
        assert body["code"] == "invalid_request"
        assert [e["field"] for e in body["errors"]] == ["query.limit"]


def test_given_a_cursor_before_the_timeline_then_400_bad_cursor(world: dict) -> None:
    status, body = _call(world["app"], "GET", f"/admin/profiles/{world['survivor']}?cursor=A")

    assert status == 400
    assert body["code"] == "bad_cursor"


def test_given_a_lookup_with_a_cursor_then_the_next_page_is_returned(world: dict) -> None:
    status, first = _call(world["app"], "GET", "/admin/profiles/lookup?email=li@x.cn&limit=2")
    from urllib.parse import quote

    cursor = quote(first["next_cursor"], safe="")
    status, second = _call(
        world["app"], "GET", f"/admin/profiles/lookup?email=li@x.cn&limit=2&cursor={cursor}"
    )

    assert status == 200
    seen = [t["message_id"] for t in first["timeline"] + second["timeline"]]
    assert len(seen) == len(set(seen)) == 3


def test_given_a_merge_when_unmerged_over_http_then_profile_unmerged_is_published(world: dict) -> None:
    status, body = _call(
        world["app"],
        "POST",
        f"/admin/profiles/{world['survivor']}/unmerge",
        {"absorbed_id": world["absorbed"]},
    )

    assert status == 200
    assert body["restored_id"] == world["absorbed"]
    assert (
        world["publisher"].of_type(DetailType.PROFILE_UNMERGED)[0].detail["profile_id"] == world["survivor"]
    )


def test_given_a_person_when_erased_over_http_then_lookup_finds_nothing(world: dict) -> None:
    status, body = _call(world["app"], "POST", "/admin/profiles/erase", {"type": "email", "value": "LI@x.cn"})

    assert status == 200
    assert set(body["profile_ids"]) == {world["survivor"], world["absorbed"]}
    assert world["publisher"].of_type(DetailType.PROFILE_ERASED)
    assert _call(world["app"], "GET", "/admin/profiles/lookup?email=li@x.cn")[0] == 404


def test_given_a_person_when_exported_over_http_then_the_document_has_the_timeline(world: dict) -> None:
    status, body = _call(world["app"], "GET", f"/admin/profiles/{world['absorbed']}/export")

    assert status == 200
    assert body["profile_id"] == world["survivor"]
    assert len(body["timeline"]) == 3


# -- the CLI against a real HTTP port ---------------------------------------------------------------


@pytest.fixture
def api_url(world: dict) -> Iterator[str]:
    app = world["app"]

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else None
            parts = urlsplit(self.path)
            event = _apigw_event(self.command, parts.path, parts.query, dict(self.headers.items()), body)
            response = app.resolve(event, _Ctx())
            payload = (response.get("body") or "").encode()
            self.send_response(response["statusCode"])
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    cli_profiles.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_given_the_cli_when_getting_by_phone_then_a_readable_summary_is_printed(
    api_url: str, world: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _cli("profiles", "get", "--phone", "13800138000", "--api", api_url, "--key", ADMIN_KEY)

    out = capsys.readouterr().out
    assert code == 0
    assert f"Profile {world['survivor']}" in out
    assert "phone=+8613800138000" in out
    assert "Order Completed" in out


def test_given_the_cli_with_json_when_unmerging_then_raw_json_is_printed(
    api_url: str, world: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _cli(
        "profiles", "unmerge", "--id", world["survivor"], "--absorbed-id", world["absorbed"],
        "--api", api_url, "--key", ADMIN_KEY, "--json",
    )  # fmt: skip

    assert code == 0
    assert json.loads(capsys.readouterr().out)["restored_id"] == world["absorbed"]


def test_given_a_wrong_key_then_the_cli_exits_non_zero_with_the_reason(
    api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HUILIU_ADMIN_KEY", raising=False)

    code = _cli("profiles", "export", "--email", "li@x.cn", "--api", api_url, "--key", "wrong")

    assert code == 1
    assert "HTTP 401" in capsys.readouterr().err
