"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can do its job).

Ready means: upstream answers (or the cache has content to serve while it does not), the notification
backlog is below its bound, and, when management credentials are configured, an IMS token is at hand.
Each check says why in the JSON detail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from proxy.content.cache import InMemoryContentCache
from proxy.http.bodies import JSONAnswer
from proxy.http.errors import ApiError
from proxy.management.credentials import TokenProvider
from proxy.notifications.store import NotificationStore
from proxy.settings import Settings
from proxy.upstream import Upstream, UpstreamUnavailable, client_host

PROBE_INTERVAL_S = 1.0
PROBE_PATH = "/rest/v1/delivery"


class Health:
    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        cache: InMemoryContentCache,
        store: NotificationStore,
        tokens: TokenProvider,
        redis_check: Callable[[], dict[str, Any] | None] | None = None,
        decisioning_check: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.cache = cache
        self.store = store
        self.tokens = tokens
        self._probed_at = float("-inf")
        self._reachable = False
        self._detail = "not probed yet"
        self.redis_check = redis_check or (lambda: None)  # when gateways share their state on Redis
        self.decisioning_check = decisioning_check or (lambda: None)  # when deciding on device

    async def upstream_reachable(self) -> tuple[bool, str]:
        """Any HTTP answer below 500 to a GET of the Delivery API's path (which takes POSTs only, so the
        probe decides nothing and costs nothing) means the edge is there; probed at most once a second."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_INTERVAL_S:
            self._probed_at = now
            try:
                response = await self.upstream.request(
                    "GET", client_host(self.settings.client), PROBE_PATH, timeout_ms=1000, probe=True
                )
                self._reachable = response.status < 500
                self._detail = f"answered {response.status}"
            except UpstreamUnavailable as exc:
                self._reachable, self._detail = False, exc.message
        return self._reachable, self._detail

    async def checks(self) -> dict[str, dict[str, Any]]:
        reachable, detail = await self.upstream_reachable()
        entries = self.cache.entries
        depth = self.store.depth() if self.store.opened else 0
        checks: dict[str, dict[str, Any]] = {
            "upstream": {
                "ok": reachable or entries > 0,
                "reachable": reachable,
                "detail": detail if reachable or not entries else f"{detail}; serving {entries} cached entries",
            },
            "notifications": {
                "ok": depth < self.store.max_backlog,
                "backlog": depth,
                "bound": self.store.max_backlog,
                "detail": f"{depth} waiting of at most {self.store.max_backlog}",
            },
        }
        redis = self.redis_check()
        if redis is not None:
            checks["redis"] = redis  # stays ok while down: the gateway serves from memory
        decisioning = self.decisioning_check()
        if decisioning is not None:
            checks["decisioning"] = decisioning
        if self.tokens.configured:
            try:
                await self.tokens.token()
                checks["credentials"] = {"ok": True, "detail": "IMS token at hand"}
            except (ApiError, UpstreamUnavailable) as exc:
                checks["credentials"] = {"ok": False, "detail": exc.message}
        return checks

    async def healthz(self, request: Request) -> Response:
        return JSONAnswer({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        checks = await self.checks()
        ready = all(check["ok"] for check in checks.values())
        return JSONAnswer({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)
