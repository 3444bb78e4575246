"""The admin API's collaborators, on the stage runner's one slot per stage (``huiliu.stage``).

The slot named :data:`STAGE` holds an :class:`AdminServices`: the key authenticator, the key
service, the Secrets Manager client and each router's collaborator (the profile, segment and
journey admins, the template and report repositories), each built on first use by the module that
needs it, and the publisher the routers publish with. Like every other stage:

- tests and the local runtime inject with ``stage.configure("admin", service=AdminServices(
  segments=SegmentsAdmin(...)), publisher=MemoryPublisher())`` (what is not given is still built);
- ``stage.configure("admin")`` or ``stage.reset_all()`` empties it (a fresh container);
- a built (not injected) one is rebuilt when the settings change (tests and the CLI swap the
  environment: new collaborators with fresh AWS clients).

The admin and ops handlers register the slot when imported (``stage.register``); a router used
without them (a unit test mounting one router) finds or creates it with :func:`services`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from huiliu import stage

if TYPE_CHECKING:
    from huiliu.adminapi.auth import KeyAuthenticator
    from huiliu.adminapi.keys import KeyService

STAGE = "admin"
T = TypeVar("T")


class AdminServices:
    """The admin API's collaborators by name: given ones as they are, the others built on first use."""

    def __init__(self, **given: Any) -> None:
        self._items: dict[str, Any] = dict(given)

    def get(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._items:
            self._items[name] = build()
        item: T = self._items[name]
        return item


def services() -> AdminServices:
    """The admin collaborators of this container (the slot's service, built on first use)."""
    found: AdminServices = stage.slot(STAGE, AdminServices).get_service()
    return found


def publish(events: Sequence[Any]) -> None:
    """Publish on the bus with the slot's publisher (contract models or OutgoingEvents)."""
    if events:
        stage.publish(stage.slot(STAGE, AdminServices), events)


def _build_authenticator() -> KeyAuthenticator:
    from huiliu.adminapi.auth import KeyAuthenticator
    from huiliu.settings import get_settings
    from huiliu.tenants.repository import TenantRepository

    settings = get_settings()
    return KeyAuthenticator(TenantRepository(settings.tenants_table), settings.hash_salt)


def authenticator() -> KeyAuthenticator:
    return services().get("auth", _build_authenticator)


def _build_key_service() -> KeyService:
    from huiliu.adminapi.keys import KeyService

    auth = authenticator()
    return KeyService(auth.repo, auth.salt, on_revoke=auth.forget)


def key_service() -> KeyService:
    return services().get("keys", _build_key_service)


def _build_secrets_client() -> Any:
    from huiliu import aws

    return aws.client("secretsmanager")


def secrets_client() -> Any:
    return services().get("secrets", _build_secrets_client)
