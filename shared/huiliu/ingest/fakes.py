"""In-memory collaborators for the ingest pipeline (unit tests, benchmarks, local demos)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from huiliu.bus import MemoryPublisher
from huiliu.errors import NotFound
from huiliu.ingest.archive import MemoryRawArchive
from huiliu.ingest.idempotency import MemoryDedupeStore
from huiliu.ingest.metrics import MemoryIngestMetrics
from huiliu.ingest.pipeline import IngestPipeline
from huiliu.tenants import TenantSecrets, TenantSettings


class StaticDirectory:
    """Tenants held in memory: {tenant_id: (settings, secrets)}."""

    def __init__(self, tenants: dict[str, tuple[TenantSettings, TenantSecrets]] | None = None) -> None:
        self.tenants = dict(tenants or {})

    def add(self, settings: TenantSettings, secrets: TenantSecrets) -> None:
        self.tenants[settings.tenant_id] = (settings, secrets)

    def settings(self, tenant_id: str) -> TenantSettings:
        if tenant_id not in self.tenants:
            raise NotFound("unknown tenant or connector")
        return self.tenants[tenant_id][0]

    def secrets(self, tenant_id: str) -> TenantSecrets:
        if tenant_id not in self.tenants:
            raise NotFound("unknown tenant or connector")
        return self.tenants[tenant_id][1]

    def tenant_for_write_key(self, write_key: str) -> str | None:
        for tenant_id, (_, secrets) in self.tenants.items():
            if secrets.segment and secrets.segment.write_key == write_key:
                return tenant_id
        return None


def memory_pipeline(
    directory: StaticDirectory, clock: Callable[[], datetime] | None = None, max_body_bytes: int = 512 * 1024
) -> IngestPipeline:
    """A pipeline whose AWS collaborators are all in memory (inspect them through its attributes)."""
    return IngestPipeline(
        directory=directory,
        dedupe=MemoryDedupeStore(),
        archive=MemoryRawArchive(),
        publisher=MemoryPublisher(),
        metrics=MemoryIngestMetrics(),
        clock=clock,
        max_body_bytes=max_body_bytes,
    )
