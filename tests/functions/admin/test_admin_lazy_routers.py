"""The admin app mounts a router when a request first needs it (cold start: huiliu.adminapi.mount).

What must not change: the OpenAPI document (byte for byte, whichever route was served first),
request validation on every route, the gate before any route module is imported."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from itertools import count
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from huiliu.adminapi.core import build_app, openapi_document, swagger_page
from huiliu.adminapi.mount import ADMIN_ROUTERS

from tests.functions.admin.admin_helpers import Reply, http_event
from tests.functions.ingest.ingest_helpers import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "functions/admin/app.py"
_fresh = count()


def _fresh_admin() -> ModuleType:
    """functions/admin/app.py imported anew: a cold container (nothing mounted yet)."""
    spec = importlib.util.spec_from_file_location(f"admin_lazy_{next(_fresh)}", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call(module: ModuleType, method: str, path: str, key: str | None = None, **kwargs: Any) -> Reply:
    response = module.handler(
        http_event(method, path, key=key, **kwargs), LambdaContext(function_name="admin")
    )
    raw = response.get("body") or ""
    return Reply(response["statusCode"], json.loads(raw) if raw.startswith("{") else None, raw)


def _eager_document() -> str:
    """The document of a resolver with every router mounted up front, as the app did before."""
    app = build_app(routers=[spec.load() for spec in ADMIN_ROUTERS])
    return json.dumps(openapi_document(app))


def test_importing_the_admin_handler_imports_no_route_module() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('admin_cold', {str(APP)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"print([m for m in {[s.module for s in ADMIN_ROUTERS]!r} if m in sys.modules])\n"
        "print(module.routers.mounted)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert result.stdout.split("\n")[:2] == ["[]", "[]"]


def test_every_admin_route_lives_under_the_prefixes_its_router_is_mounted_for() -> None:
    seen: dict[str, str] = {}
    for spec in ADMIN_ROUTERS:
        paths = openapi_document(build_app(routers=[spec.load()]))["paths"]
        assert paths, spec.module
        for path in paths:
            assert spec.serves(path), f"{spec.module}: {path} is outside {spec.prefixes}"
            owners = [s.module for s in ADMIN_ROUTERS if s.serves(path)]
            assert owners == [spec.module], f"{path} is served by {owners}"
            seen[path] = spec.module
    # every route module of the admin API is listed (the ops API has its own function)
    files = [*ROOT.glob("shared/huiliu/*/admin_routes.py"), *ROOT.glob("shared/huiliu/adminapi/routes_*.py")]
    modules = {".".join(f.relative_to(ROOT / "shared").with_suffix("").parts) for f in files}
    modules -= {"huiliu.adminapi.routes_ops"}
    assert modules == {spec.module for spec in ADMIN_ROUTERS}
    assert len(seen) >= 30


def test_the_document_is_byte_identical_whichever_route_a_cold_container_served_first(
    world: dict[str, Any],
) -> None:
    key = world["shop-a"]["admin"]
    eager = _eager_document()
    for first in ("/admin/segments", "/admin/reports", "/admin/keys"):
        module = _fresh_admin()
        assert _call(module, "GET", first, key).status == 200
        assert len(module.routers.mounted) == 1

        document = _call(module, "GET", "/admin/openapi.json")

        assert document.status == 200
        assert document.raw == eager
        # the document's resolver is separate: serving it mounted nothing on the app
        assert len(module.routers.mounted) == 1
    page = _call(_fresh_admin(), "GET", "/admin/docs").raw
    assert page == swagger_page(build_app(routers=[spec.load() for spec in ADMIN_ROUTERS]))


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("GET", "/admin/profiles/p-1", {"query": {"limit": "0"}}, "query.limit"),
        ("POST", "/admin/keys", {"body": {"scope": "root"}}, "body.scope"),
        ("GET", "/admin/segments/vip/members", {"query": {"limit": "100000"}}, "query.limit"),
        ("PUT", "/admin/tenant/settings", {"body": {"colour": "red"}}, "body.colour"),
    ],
)
def test_a_route_mounted_by_the_first_request_still_validates_it(
    world: dict[str, Any], method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    module = _fresh_admin()

    reply = _call(module, method, path, world["shop-a"]["admin"], **kwargs)

    assert reply.status == 400, reply.raw
    assert field in [e["field"] for e in reply.body["errors"]]


def test_a_caller_without_a_valid_key_mounts_nothing(world: dict[str, Any]) -> None:
    module = _fresh_admin()

    missing = _call(module, "GET", "/admin/segments")
    wrong = _call(module, "GET", "/admin/journeys", "hl_not_a_key")
    read_only = _call(module, "GET", "/admin/keys", world["shop-a"]["read"])  # needs admin scope

    assert (missing.status, wrong.status, read_only.status) == (401, 401, 403)
    assert module.routers.mounted == []


def test_a_path_no_router_serves_is_a_404_and_mounts_nothing(world: dict[str, Any]) -> None:
    module = _fresh_admin()

    reply = _call(module, "GET", "/admin/segmentsx", world["shop-a"]["admin"])

    assert (reply.status, reply.body["code"]) == (404, "not_found")
    assert module.routers.mounted == []


def test_each_router_serves_the_tenant_of_the_request_when_two_admin_apps_share_a_process(
    world: dict[str, Any],
) -> None:
    """Routers are module-level: the second app mounting one must not steal the first app's
    requests (the tenant is read from the context of the app that serves the request)."""
    first, second = _fresh_admin(), _fresh_admin()
    a, b = world["shop-a"]["admin"], world["shop-b"]["admin"]

    assert _call(first, "GET", "/admin/tenant", a).body["tenant"]["tenant_id"] == "shop-a"
    assert _call(second, "GET", "/admin/tenant", b).body["tenant"]["tenant_id"] == "shop-b"
    assert _call(first, "GET", "/admin/tenant", a).body["tenant"]["tenant_id"] == "shop-a"
    assert _call(second, "GET", "/admin/openapi.json").status == 200
    assert _call(first, "GET", "/admin/tenant", a).body["tenant"]["tenant_id"] == "shop-a"


def test_the_handler_serves_with_the_collaborators_injected_on_the_admin_slot(world: dict[str, Any]) -> None:
    from huiliu import stage
    from huiliu.adminapi.wiring import STAGE, AdminServices

    calls: list[str] = []

    class Reports:
        def items(self, tenant: str) -> list[dict[str, Any]]:
            calls.append(tenant)
            return []

    module = _fresh_admin()  # a new container: the slot is registered empty on import
    stage.configure(STAGE, service=AdminServices(reports=Reports()))
    try:
        reply = _call(module, "GET", "/admin/reports", world["shop-b"]["admin"])
    finally:
        stage.configure(STAGE)

    assert reply.status == 200
    assert calls == ["shop-b"]
