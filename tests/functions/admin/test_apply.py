"""``huiliu apply -f DIR``: validate everything first, apply in dependency order, dry-run diffs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from huiliu_infra.admin_client import AdminApi
from huiliu_infra.cli_apply import run

from tests.functions.admin.admin_helpers import AdminClient

JOURNEY = """
kind: journey
definition:
  id: winback
  name: Win-back
  trigger: {segment_entered: dormant-90d, include_backfill: false}
  entry: {policy: once_per_period, period: 90d}
  goal: {event: Order Completed, within: 30d}
  steps:
    - {id: winback-email, type: send, channel: email, template: winback-email}
"""
SETTINGS = """
kind: settings
settings:
  timezone: Europe/Berlin
  quiet_hours: {start: "22:00", end: "07:00"}
"""


@pytest.fixture
def api(world: dict[str, Any]) -> Iterator[AdminApi]:
    client: AdminClient = world["client"]
    # the journey's references exist (segment and template routes are other stages')
    from huiliu.settings import get_settings
    from huiliu.storage.dynamo import DynamoRepository

    settings = get_settings()
    DynamoRepository(settings.segments_table).put({"pk": "T#shop-a#SEG", "sk": "DEF#dormant-90d"})
    DynamoRepository(settings.tenants_table).put({"pk": "T#shop-a", "sk": "TEMPLATE#winback-email"})

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else None
            parts = urlsplit(self.path)
            reply = client.call(
                self.command,
                parts.path,
                self.headers.get("authorization", "")[7:] or None,
                query=dict(parse_qsl(parts.query)) or None,
                raw_body=body,
            )
            payload = reply.raw.encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield AdminApi(f"http://127.0.0.1:{server.server_address[1]}", world["shop-a"]["admin"])
    server.shutdown()


def _run(api: AdminApi, directory: Path, *, dry_run: bool = False) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    code = run(api, directory, dry_run=dry_run, out=out.append, err=err.append)
    return code, out, err


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_apply_writes_settings_then_journeys(api: AdminApi, tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"journeys/winback.yaml": JOURNEY, "settings.yaml": SETTINGS})

    code, out, err = _run(api, tree)

    assert code == 0, err
    assert out[0] == "settings applied"
    assert out[1].startswith("journey winback applied")
    assert api.ok("GET", "/tenant/settings")["timezone"] == "Europe/Berlin"
    assert api.ok("GET", "/tenant/settings")["name"] == ""  # keys not in the file keep their values
    assert api.request("GET", "/journeys/winback")[0] == 200


def test_dry_run_prints_the_diff_and_changes_nothing(api: AdminApi, tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"journeys/winback.yaml": JOURNEY, "settings.yaml": SETTINGS})

    code, out, _ = _run(api, tree, dry_run=True)

    assert code == 0
    text = "\n".join(out)
    assert "-timezone: Asia/Shanghai" in text
    assert "+timezone: Europe/Berlin" in text
    assert "+ journey winback (new" in text
    assert api.ok("GET", "/tenant/settings")["timezone"] == "Asia/Shanghai"
    assert api.request("GET", "/journeys/winback")[0] == 404


def test_an_invalid_yaml_file_fails_with_file_and_line_and_applies_nothing(
    api: AdminApi, tmp_path: Path
) -> None:
    tree = _tree(
        tmp_path, {"settings.yaml": SETTINGS, "journeys/broken.yaml": "kind: journey\ndefinition: [\n"}
    )

    code, _, err = _run(api, tree)

    assert code == 1
    assert any("broken.yaml: line" in line for line in err)
    assert api.ok("GET", "/tenant/settings")["timezone"] == "Asia/Shanghai"


def test_a_definition_the_api_refuses_fails_with_its_path_and_applies_nothing(
    api: AdminApi, tmp_path: Path
) -> None:
    bad = JOURNEY.replace("channel: email", "channel: pigeon")
    tree = _tree(tmp_path, {"settings.yaml": SETTINGS, "journeys/winback.yaml": bad})

    code, _, err = _run(api, tree)

    assert code == 1
    assert any("winback.yaml: definition.steps" in line for line in err), err
    assert api.ok("GET", "/tenant/settings")["timezone"] == "Asia/Shanghai"


def test_unknown_settings_and_duplicate_ids_are_named(api: AdminApi, tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "settings.yaml": "kind: settings\nsettings: {colour: red}\n",
            "a.yaml": JOURNEY,
            "b.yaml": JOURNEY,
        },
    )

    code, _, err = _run(api, tree)

    assert code == 1
    assert any("b.yaml: definition.id: journey winback also in" in line for line in err), err
    # local problems stop before the API is asked; the settings file is checked once they are fixed
    (tmp_path / "b.yaml").unlink()
    code, _, err = _run(api, tree)
    assert code == 1
    assert any("settings.yaml: settings.colour: Extra inputs are not permitted" in line for line in err), err
    assert json.dumps(api.ok("GET", "/tenant/settings")).count("colour") == 0


def test_references_to_segments_and_templates_in_the_same_directory_are_not_problems() -> None:
    from huiliu_infra.cli_apply import Item, Plan, Problem, _defined_here

    plan = Plan(items=[Item("segment", "vip", "s.yaml", {"id": "vip"})])

    assert _defined_here(Problem("j.yaml", "definition.trigger", "unknown segment 'vip'"), plan)
    assert not _defined_here(Problem("j.yaml", "definition.trigger", "unknown segment 'other'"), plan)
    assert not _defined_here(Problem("j.yaml", "definition.steps", "unknown template 'vip'"), plan)
