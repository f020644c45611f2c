"""The gateway application: the routes over the parts ``proxy.gateway`` builds, and their metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from proxy.api import openapi
from proxy.api.batch import BatchMbox
from proxy.api.delivery import DeliveryApi
from proxy.api.mbox import SingleMbox
from proxy.api.profiles import ProfileRoutes
from proxy.gateway import Gateway, build_gateway
from proxy.http.errors import EXCEPTION_HANDLERS, ApiError
from proxy.http.hotpath import REQUEST_ID_HEADER, REQUEST_ID_SCOPE_KEY, HotPaths, RequestLimits
from proxy.http.observed import Observed
from proxy.management.admin import AdminRoutes
from proxy.ops import logs, metrics
from proxy.ops.health import Health
from proxy.ops.metrics import CounterSync, RequestObserver, metrics_response
from proxy.ops.operations import OperationRoutes
from proxy.ops.runtime import tune_gc
from proxy.settings import Settings, load_settings

logger = logging.getLogger("proxy")
SWEEP_INTERVAL_S = 60.0
METRICS_INTERVAL_S = 2.0


def refresh_metrics(gateway: Gateway, sync: CounterSync) -> None:
    """Copy what the gateway counts into the Prometheus registry."""
    cache = gateway.cache.counters
    sync.add(metrics.CACHE_LOOKUPS.labels("hit"), "", cache.hits)
    sync.add(metrics.CACHE_LOOKUPS.labels("miss"), "", cache.misses)
    sync.add(metrics.CACHE_LOOKUPS.labels("stale"), "", cache.stale_served)
    sync.add(metrics.CACHE_EVICTIONS, "", cache.evictions)
    metrics.CACHE_ENTRIES.set(gateway.cache.entries)
    metrics.CACHE_BYTES.set(gateway.cache.bytes)
    metrics.SESSIONS.set(len(gateway.sessions))
    queue = gateway.queue.counters
    for outcome in ("accepted", "flushed", "ridden", "failed", "retried", "dead_lettered"):
        sync.add(metrics.NOTIFICATIONS.labels(outcome), "", getattr(queue, outcome))
    for outcome in ("calls", "isolated", "unnarrowed"):
        sync.add(metrics.REFUSALS.labels(outcome), "", getattr(gateway.refusals.counters, outcome))
    if gateway.store.opened:
        metrics.BACKLOG.set(gateway.store.depth())
        metrics.BACKLOG_AGE.set(gateway.store.oldest_age())
    sync.add(metrics.RATE_LIMITED.labels("admin"), "", gateway.admin_budget.rejected)
    sync.add(metrics.RATE_LIMITED.labels("client_key"), "", gateway.keys.limited)
    metrics.CIRCUIT_OPEN.set(1 if gateway.upstream.open_circuits else 0)
    sync.add(metrics.RATE_LIMITED.labels("activation"), "", gateway.guard.refused)
    metrics.TOKEN_AVAILABLE.set(1 if gateway.tokens.available else 0)
    on_device = gateway.content.on_device
    if on_device is not None:
        local = on_device.local
        artifact = local.source.current
        metrics.ARTIFACT_AGE.set(local.source.age() if artifact else -1)
        for version in local.source.versions_seen:
            metrics.ARTIFACT_VERSION.labels(version).set(1 if artifact and version == artifact.version else 0)
        sync.add(metrics.ON_DEVICE.labels("decided"), "", local.decided)
        sync.add(metrics.ON_DEVICE.labels("edge"), "", local.left_to_edge)


async def sweep_forever(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        gateway.sessions.sweep()
        gateway.cache.sweep()


async def refresh_forever(refresh: Callable[[], None]) -> None:
    # With several workers a scrape reads every process's last copy: keep them recent.
    while True:
        await asyncio.sleep(METRICS_INTERVAL_S)
        refresh()


def create_app(
    settings: Settings | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> HotPaths:
    settings = settings or load_settings()
    gateway = build_gateway(settings, clock, wall_clock)
    profiles = ProfileRoutes(settings, gateway.upstream, gateway.sessions, gateway.keys, gateway.budget_for)
    health = Health(
        settings,
        gateway.upstream,
        gateway.cache,
        gateway.store,
        gateway.tokens,
        gateway.redis_check,
        gateway.decisioning_check,
    )
    operations = OperationRoutes(
        gateway.keys, gateway.sessions, gateway.cache, gateway.queue, gateway.refusals, health, gateway.shared_document
    )
    admin = AdminRoutes(
        settings, gateway.upstream, gateway.tokens, gateway.keys, gateway.cache, gateway.guard, gateway.admin_budget
    )
    sync = CounterSync()

    def refresh() -> None:
        refresh_metrics(gateway, sync)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        background = [asyncio.create_task(sweep_forever(gateway)), asyncio.create_task(refresh_forever(refresh))]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await gateway.stop()

    routes = [
        Route(
            "/rest/v1/profiles/thirdPartyId/{third_party_id}",
            profiles.fetch_by_third_party_id,
            methods=["GET"],
        ),
        Route("/rest/v1/profiles/{tnt_id}", profiles.fetch_by_tnt_id, methods=["GET"]),
        Route("/m2/{client}/profile/update", profiles.update, methods=["GET", "POST"]),
        Route("/m2/{client}/v2/profile/batchUpdate", profiles.batch_update, methods=["POST"]),
        Route("/m2/{client}/profile/batchUpdate", profiles.batch_update, methods=["POST"]),
        Route("/m2/{client}/v2/profile/batchStatus", profiles.batch_status, methods=["GET"]),
        # The delivery paths take POST only (the hot path answers those): anything else is 405, as upstream.
        *(Route(path, post_only, methods=OTHER_METHODS) for path in POST_ONLY_PATHS),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics_response(refresh), methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *operations.routes(),
        *admin.routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.state.gateway = gateway
    observe = RequestObserver(gateway.access_log)
    limits = RequestLimits(settings.max_in_flight)
    hot = HotPaths(ObservedApp(app, observe), settings.max_body_bytes, observe, limits, app.state)
    for wire_api in (
        SingleMbox(gateway.content),
        BatchMbox(gateway.content),
        DeliveryApi(gateway.content, settings.client),
    ):
        wire_api.mount(hot)
    return hot


OPENAPI = orjson.dumps(openapi.document())
POST_ONLY_PATHS = ("/rest/v1/mbox", "/rest/v1/mbox/{session_id}", "/rest/v2/batchmbox", "/rest/v1/delivery")
OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def post_only(request: Request) -> Response:
    raise ApiError(405, f"{request.method} is not allowed here: this path takes POST", "method", {"Allow": "POST"})


async def openapi_json(request: Request) -> Response:
    return Response(OPENAPI, media_type="application/json")


def create_worker_app() -> HotPaths:
    """The factory each worker process calls: its settings come from the environment."""
    settings = load_settings()
    logs.configure(settings.log_level)
    app = create_app(settings)
    tune_gc()
    return app


class ObservedApp:
    """The Starlette app, with every request counted, timed and logged by its route (the hot path
    records its own)."""

    def __init__(self, app: Starlette, observe: RequestObserver) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = scope[REQUEST_ID_SCOPE_KEY]

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            self.observe(Observed(scope["method"], route_of(scope), status, elapsed, None, None, request_id))


def route_of(scope: Scope) -> str:
    """The route template, so that metric labels stay few whatever the paths."""
    matched = scope.get("route")
    return str(getattr(matched, "path", "unmatched"))
