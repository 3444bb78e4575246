"""Builds the real journeys collaborators from settings (handlers call this once, lazily)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from huiliu.journeys.repository import JourneysRepository
from huiliu.journeys.service import Definitions, JourneysService, JourneyTicker, JourneyTickService, TenantEnv


def tenant_env_lookup() -> Callable[[str], TenantEnv]:
    """Time zone and longest wait per tenant, from TenantsTable (read-only, cached)."""
    from huiliu.identity.wiring import tenant_settings_lookup

    settings_for = tenant_settings_lookup()

    def lookup(tenant: str) -> TenantEnv:
        s = settings_for(tenant)
        return TenantEnv(timezone=s.timezone, max_wait=timedelta(days=s.journey_max_wait_days))

    return lookup


def build_repository() -> JourneysRepository:
    from huiliu.settings import get_settings

    return JourneysRepository(get_settings().journeys_table)


def _publisher():  # type: ignore[no-untyped-def]
    from huiliu.bus import bus_publisher

    return bus_publisher()


def build_service() -> JourneysService:
    repo = build_repository()
    return JourneysService(repo, _publisher(), definitions=Definitions(repo), tenant_env=tenant_env_lookup())


def build_ticker() -> JourneyTicker:
    repo = build_repository()
    return JourneyTicker(repo, _publisher(), definitions=Definitions(repo), tenant_env=tenant_env_lookup())


def build_tick_service() -> JourneyTickService:
    return JourneyTickService(build_ticker())
