"""The one place boto3 clients are built.

Endpoint precedence, per service:
1. ``AWS_ENDPOINT_URL_<SERVICE>`` (e.g. ``AWS_ENDPOINT_URL_DYNAMODB``) — botocore's own convention;
2. ``AWS_ENDPOINT_URL`` — one emulated endpoint for everything (the local runtime's moto server);
3. LocalStack settings (``LOCALSTACK_ENDPOINT``, or ``LOCALSTACK_HOSTNAME`` + ``EDGE_PORT`` as
   LocalStack sets them inside its Lambda containers), resolved through ``localstack-client``
   when it is installed;
4. nothing: the real AWS endpoint for the region.

Clients are built lazily and cached per (service, endpoint, region): building one costs a few
milliseconds and a cold start should pay only for the clients a request actually uses.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

_CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=3,
    read_timeout=15,
    max_pool_connections=32,
)

# Hot-path clients may skip botocore's client-side parameter validation (``validate=False``): the
# service validates every request anyway, and on a journeys tick it was ~7 % of the CPU per step.
_UNVALIDATED_CONFIG = _CLIENT_CONFIG.merge(Config(parameter_validation=False))

_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str, bool], Any] = {}
_session: boto3.session.Session | None = None


def _env_service_name(service: str) -> str:
    return service.upper().replace("-", "_").replace(" ", "_")


def endpoint_for(service: str) -> str | None:
    """The endpoint URL a client for ``service`` should use, or None for real AWS."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{_env_service_name(service)}")
    if specific:
        return specific
    general = os.environ.get("AWS_ENDPOINT_URL")
    if general:
        return general
    explicit = os.environ.get("LOCALSTACK_ENDPOINT")
    if explicit:
        return explicit
    if os.environ.get("LOCALSTACK_HOSTNAME") or os.environ.get("USE_LOCALSTACK") == "1":
        try:
            from localstack_client import config as ls_config  # dev dependency, optional at runtime

            return str(ls_config.get_service_endpoint(service))
        except Exception:
            host = os.environ.get("LOCALSTACK_HOSTNAME", "localhost")
            port = os.environ.get("EDGE_PORT", "4566")
            return f"http://{host}:{port}"
    return None


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "ap-east-1"


def client(service: str, *, region_name: str | None = None, validate: bool = True) -> Any:
    """A cached boto3 client for ``service`` honouring the endpoint rules above. ``validate=False``:
    one without botocore's client-side parameter validation (for hot paths whose requests are built
    by code, not from input; the service still refuses a malformed request)."""
    global _session
    endpoint = endpoint_for(service)
    reg = region_name or region()
    key = (service, endpoint, reg, validate)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            if _session is None:
                _session = boto3.session.Session()
            make: Any = _session.client  # (boto3-stubs types it per literal service name)
            config = _CLIENT_CONFIG if validate else _UNVALIDATED_CONFIG
            found = make(service, region_name=reg, endpoint_url=endpoint, config=config)
            _clients[key] = found
    return found


def event_emitters() -> list[Any]:
    """The botocore event emitters of the factory's session and of every client it has cached.

    Instrumentation (the cost meter, the fault injector) registers its hooks on each: the session's
    emitter reaches the clients built later, the clients' own emitters those built already."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return [_session.events, *(c.meta.events for c in _clients.values())]


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints or moto contexts call this)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
