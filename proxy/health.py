"""Liveness and readiness."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from proxy.affinity import client_host
from proxy.bodies import JSONAnswer
from proxy.errors import ApiError
from proxy.settings import Settings
from proxy.upstream import Upstream

PROBE_INTERVAL_S = 1.0


class Health:
    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream
        self._probed_at = float("-inf")
        self._reachable = False
        self._detail = "not probed yet"

    async def upstream_reachable(self) -> tuple[bool, str]:
        """Any HTTP answer below 500 means the edge is there; probed at most once a second."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_INTERVAL_S:
            self._probed_at = now
            try:
                response = await self.upstream.request("GET", client_host(self.settings.client), "/", timeout_ms=1000)
                self._reachable = response.status < 500
                self._detail = f"answered {response.status}"
            except ApiError as exc:
                self._reachable, self._detail = False, exc.message
        return self._reachable, self._detail

    async def healthz(self, request: Request) -> Response:
        return JSONAnswer({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        reachable, detail = await self.upstream_reachable()
        checks = {"upstream": {"ok": reachable, "detail": detail}}
        ready = all(check["ok"] for check in checks.values())
        return JSONAnswer({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)
