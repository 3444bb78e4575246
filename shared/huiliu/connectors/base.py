"""The connector contract: one raw HTTP request in, canonical events and the source's reply out.

Connectors are pure: no AWS calls, no clock reads (``now`` is passed in), no global state.
The ingest pipeline (``huiliu.ingest``) does routing, size limits, archiving, dedupe and publishing
around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: the handler module stays cheap to import (cold start)
    from huiliu.models import CanonicalEvent
    from huiliu.tenants import TenantSecrets, TenantSettings

# Signed timestamps further than this from now are rejected (replay protection).
REPLAY_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    body: bytes
    request_id: str = ""
    source_ip: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class HttpReply:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"


@dataclass
class ConnectorResult:
    """What a connector made of one request.

    ``events`` go through dedupe and onto the bus; ``reply`` is what the source expects on success
    (also sent for duplicates). ``ingest`` False means acknowledge only (URL checks, heartbeats).
    """

    events: list[CanonicalEvent] = field(default_factory=list)
    reply: HttpReply = field(default_factory=HttpReply)
    ingest: bool = True
    # Stable id of the delivery as the source names it (for logs / archive naming).
    delivery_id: str | None = None
    # Sources that version their messages (Youzan): only a version >= the highest one seen for
    # ``version_key`` is published; older deliveries are acknowledged and dropped.
    version_key: str | None = None
    version: int | None = None


@dataclass
class Authenticated:
    """What a connector's authentication step established (passed on to ``translate``).

    ``state`` is connector-private (a parsed body, the safe-mode envelope …). ``replay_guard`` is
    ``(key, body digest)`` for sources whose signature does not cover the body (WeChat plain mode):
    the pipeline binds the signed (timestamp, nonce) to the first body seen with it, so a captured
    signature cannot be replayed with another body inside the timestamp window.
    """

    state: Any = None
    replay_guard: tuple[str, str] | None = None


@dataclass(frozen=True)
class TenantContext:
    tenant_id: str
    settings: TenantSettings
    secrets: TenantSecrets


class Connector(Protocol):
    """Two steps, so the pipeline can authenticate before anything else looks at the body.

    ``authenticate`` checks the signature over the raw request (no content-type checks, no parsing
    beyond what the signature scheme itself needs); any error it raises is an authentication
    failure, answered on hook routes exactly like an unknown tenant. ``translate`` does the rest.
    ``handle`` = both, for direct use.
    """

    name: str

    def authenticate(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> Authenticated: ...

    def translate(
        self, request: HttpRequest, tenant: TenantContext, now: datetime, auth: Authenticated
    ) -> ConnectorResult: ...

    def handle(self, request: HttpRequest, tenant: TenantContext, now: datetime) -> ConnectorResult:
        """Verify, parse and translate; raise a ``huiliu.errors.HuiliuError`` for bad input."""
        return self.translate(request, tenant, now, self.authenticate(request, tenant, now))
