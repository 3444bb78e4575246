"""The admin API's collaborators live on the stage runner's slot ("admin"), like every stage's."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from huiliu import stage
from huiliu.adminapi import wiring
from huiliu.adminapi.mount import ADMIN_ROUTERS
from huiliu.adminapi.wiring import STAGE, AdminServices
from huiliu.settings import get_settings


class _Reports:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def items(self, tenant: str) -> list[dict[str, Any]]:
        self.calls.append(tenant)
        return []


def test_no_admin_route_module_keeps_collaborators_of_its_own() -> None:
    for module in [spec.module for spec in ADMIN_ROUTERS] + ["huiliu.adminapi.routes_ops"]:
        loaded = importlib.import_module(module)
        assert not hasattr(loaded, "configure"), module
        assert not hasattr(loaded, "_deps"), module


def test_an_injected_collaborator_is_used_and_the_others_are_built_on_first_use() -> None:
    reports = _Reports()
    stage.configure(STAGE, service=AdminServices(reports=reports))

    assert wiring.services().get("reports", lambda: pytest.fail("built although injected")) is reports
    built = wiring.services().get("journeys", object)
    assert wiring.services().get("journeys", object) is built  # built once per container


def test_configure_before_a_router_module_first_finds_the_slot_still_holds() -> None:
    """The admin app imports a router on its first request: by then a test or the local runtime
    may have injected; the module finding the slot (stage.slot) must not empty it."""
    reports = _Reports()
    stage.configure(STAGE, service=AdminServices(reports=reports))

    found = stage.slot(STAGE, AdminServices)

    assert found.get_service().get("reports", _Reports) is reports


def test_a_new_container_and_reset_all_empty_the_slot() -> None:
    reports = _Reports()
    stage.configure(STAGE, service=AdminServices(reports=reports))
    stage.reset_all()
    assert wiring.services().get("reports", _Reports) is not reports

    stage.configure(STAGE, service=AdminServices(reports=reports))
    stage.register(STAGE, AdminServices)  # what importing the admin or ops handler does
    assert wiring.services().get("reports", _Reports) is not reports


def test_built_collaborators_are_rebuilt_when_the_settings_change(monkeypatch: pytest.MonkeyPatch) -> None:
    stage.configure(STAGE)
    first = wiring.authenticator()
    assert wiring.authenticator() is first

    monkeypatch.setenv("TENANTS_TABLE", "another-tenants-table")
    get_settings.cache_clear()

    assert wiring.authenticator() is not first
    assert wiring.authenticator().repo.table_name == "another-tenants-table"


def test_the_routers_publish_with_the_slots_publisher() -> None:
    from huiliu.bus import MemoryPublisher, OutgoingEvent

    publisher = MemoryPublisher()
    stage.configure(STAGE, publisher=publisher)

    wiring.publish(
        [OutgoingEvent(detail_type="segment.entered", detail={"tenant_id": "t"}, source="huiliu.admin")]
    )
    wiring.publish([])

    assert [e.detail_type for e in publisher.events] == ["segment.entered"]
