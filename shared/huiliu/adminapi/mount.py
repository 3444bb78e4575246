"""Which router serves which admin paths, and mounting each one when a request first needs it.

A cold admin container used to import every route module (and the domain modules behind them:
the segment compiler, the journey catalogue, notify's templates …) before serving anything. Here
a router is imported and included in the resolver when the first request under one of its path
prefixes arrives; ``/openapi.json`` and ``/docs`` document a resolver with every router mounted in
:data:`ADMIN_ROUTERS` order, so the document does not depend on which routes were used first.

Every route of a router must live under the prefixes listed for it (a test imports them all and
checks): a route outside them would be unreachable until another request mounted its router.
Powertools builds a route's validation model on the route's first request, not when it is
registered, so a lazily mounted route is validated exactly as an eagerly mounted one.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RouterSpec:
    """A module with a module-level ``router`` and the paths (after the API prefix) it serves."""

    module: str
    prefixes: tuple[str, ...]

    def serves(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    def load(self) -> Any:
        return importlib.import_module(self.module).router


# The admin API's routers, in the order the OpenAPI document lists them.
ADMIN_ROUTERS: tuple[RouterSpec, ...] = (
    RouterSpec("huiliu.adminapi.routes_tenant", ("/tenant",)),
    RouterSpec("huiliu.adminapi.routes_keys", ("/keys",)),
    RouterSpec("huiliu.identity.admin_routes", ("/profiles",)),
    RouterSpec("huiliu.segments.admin_routes", ("/segments",)),
    RouterSpec("huiliu.journeys.admin_routes", ("/journeys",)),
    RouterSpec("huiliu.notify.admin_routes", ("/templates", "/notifications")),
    RouterSpec("huiliu.reports.admin_routes", ("/reports",)),
)


class LazyRouters:
    """Mounts the routers of ``specs`` on ``app`` as requests need them (one container: one app).

    ``document_app()`` is the resolver the OpenAPI document and the Swagger page describe: every
    router, mounted once in ``specs`` order on a resolver of its own (built on the first request
    for the document)."""

    def __init__(self, app: Any, specs: Iterable[RouterSpec], build: Callable[..., Any]) -> None:
        self.app = app
        self.specs = tuple(specs)
        self._build = build
        self._mounted: dict[str, Any] = {}
        self._documented: Any = None
        self._lock = threading.Lock()

    @property
    def mounted(self) -> list[Any]:
        return list(self._mounted.values())

    def mount_for(self, path: str) -> None:
        """Mount every router serving ``path`` (a path after the API prefix) that is not mounted yet."""
        for spec in self.specs:
            if spec.module not in self._mounted and spec.serves(path):
                self._mount(spec)

    def mount_all(self) -> None:
        for spec in self.specs:
            if spec.module not in self._mounted:
                self._mount(spec)

    def _mount(self, spec: RouterSpec) -> None:
        with self._lock:
            if spec.module in self._mounted:
                return
            router = spec.load()
            self.app.include_router(router)
            self._mounted[spec.module] = router

    def point_at_app(self) -> None:
        """A router serves the resolver that included it last; routers are module-level objects, so
        where more than one resolver lives in a process (tests, the local runtime reloading
        handlers, the document's resolver) each request points them back at this app (its context
        holds the authenticated tenant)."""
        for router in self._mounted.values():
            router.api_resolver = self.app

    def document_app(self) -> Any:
        if self._documented is None:
            self._documented = self._build(routers=[spec.load() for spec in self.specs])
        return self._documented
