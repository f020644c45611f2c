"""The gateway application: its parts, their lifecycle and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from proxy import logs, metrics, openapi
from proxy.activation import ActivationGuard
from proxy.admin import AdminRoutes
from proxy.auth import ClientKeys
from proxy.cache import InMemoryContentCache
from proxy.credentials import TokenProvider
from proxy.delivery import DeliveryRoutes
from proxy.errors import EXCEPTION_HANDLERS, ApiError
from proxy.health import Health
from proxy.hotpath import REQUEST_ID_HEADER, REQUEST_ID_SCOPE_KEY, HotPaths, RequestLimits
from proxy.logs import AccessLog
from proxy.metrics import CounterSync, RequestObserver, metrics_response
from proxy.notifications.flusher import Flusher
from proxy.notifications.queue import NotificationQueue
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.operations import OperationRoutes
from proxy.prefetch import PrefetchPlanner
from proxy.profiles import ProfileRoutes
from proxy.ratelimit import CallBudget
from proxy.runtime import tune_gc
from proxy.sessions import InMemorySessionStore, SessionLimiter
from proxy.settings import Settings, load_settings
from proxy.upstream import Upstream

if TYPE_CHECKING:
    from proxy.shared import SharedParts

logger = logging.getLogger("proxy")
SWEEP_INTERVAL_S = 60.0
METRICS_INTERVAL_S = 2.0


@dataclass
class Gateway:
    """The gateway's long-lived parts, reachable from ``app.state.gateway``."""

    settings: Settings
    upstream: Upstream
    sessions: InMemorySessionStore
    limiter: SessionLimiter
    keys: ClientKeys
    cache: InMemoryContentCache
    planner: PrefetchPlanner
    store: NotificationStore
    queue: NotificationQueue
    flusher: Flusher
    refusals: RefusalPolicy
    tokens: TokenProvider
    guard: ActivationGuard
    admin_budget: CallBudget
    access_log: AccessLog
    shared: SharedParts | None = None  # set when gateways share their state on Redis


def build_gateway(settings: Settings, clock: Callable[[], float] = time.monotonic) -> Gateway:
    upstream = Upstream(settings)
    store = NotificationStore(
        settings.notification_store,
        settings.notification_max_backlog,
        synchronous=settings.notification_sync.upper(),
        dead_letter_path=settings.notification_dead_letters,
    )
    queue = NotificationQueue(store, settings.notification_batch_size)
    refusals = RefusalPolicy(
        settings.notification_refusal_calls_per_visitor, settings.notification_refusal_calls_per_minute
    )
    gateway = Gateway(
        settings=settings,
        upstream=upstream,
        sessions=InMemorySessionStore(settings.session_ttl_seconds, settings.session_max_visitors, clock),
        limiter=SessionLimiter(settings.session_max_concurrent),
        keys=ClientKeys(settings.client_keys, settings.client_key_rate),
        cache=InMemoryContentCache(
            ttl_seconds=settings.cache_ttl_seconds or settings.session_ttl_seconds,
            max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
            stale_seconds=settings.cache_stale_seconds,
            clock=clock,
        ),
        planner=PrefetchPlanner(settings.prefetch_groups, learn=settings.prefetch_learn),
        store=store,
        queue=queue,
        flusher=Flusher(
            queue,
            upstream,
            refusals,
            max_delay_s=settings.notification_max_delay_ms / 1000,
            retry_base_s=settings.notification_retry_base_ms / 1000,
            retry_cap_s=settings.notification_retry_cap_ms / 1000,
            max_attempts=settings.notification_max_attempts,
        ),
        refusals=refusals,
        tokens=TokenProvider(settings, upstream),
        guard=ActivationGuard(settings.activation_job_timeout_seconds),
        admin_budget=CallBudget(settings.admin_calls_per_minute, settings.admin_queue_seconds),
        access_log=AccessLog(
            settings.access_log,
            settings.log_visitor_salt.get_secret_value()
            if settings.log_visitor_salt
            else logs.stored_salt(settings.notification_store.parent / "log-salt"),
        ),
    )
    if settings.redis_url:
        from proxy.shared import share  # imports redis only when it is used

        gateway.shared = share(gateway, clock)
    return gateway


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


def create_app(settings: Settings | None = None, clock: Callable[[], float] = time.monotonic) -> HotPaths:
    settings = settings or load_settings()
    gateway = build_gateway(settings, clock)
    delivery = DeliveryRoutes(
        settings,
        gateway.upstream,
        gateway.sessions,
        gateway.limiter,
        gateway.cache,
        gateway.planner,
        gateway.queue,
    )
    profiles = ProfileRoutes(settings, gateway.upstream, gateway.sessions, gateway.keys)
    health = Health(settings, gateway.upstream, gateway.cache, gateway.store, gateway.tokens)
    health.shared = gateway.shared
    if gateway.shared is not None:
        profiles.shared_budget = gateway.shared.budget
    operations = OperationRoutes(gateway.keys, gateway.sessions, gateway.cache, gateway.queue, gateway.refusals, health)
    admin = AdminRoutes(
        settings, gateway.upstream, gateway.tokens, gateway.keys, gateway.cache, gateway.guard, gateway.admin_budget
    )
    sync = CounterSync()

    def refresh() -> None:
        refresh_metrics(gateway, sync)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.upstream.start()
        gateway.store.open()
        gateway.flusher.start()
        if gateway.shared is not None:
            await gateway.shared.start()
        gateway.access_log.start()
        background = [asyncio.create_task(sweep_forever(gateway)), asyncio.create_task(refresh_forever(refresh))]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            if gateway.shared is not None:
                held = await gateway.shared.stop(settings.shutdown_grace_seconds)
                if held:
                    logger.warning("%d notification(s) left in the redis stream for the other gateways", held)
            left = await gateway.flusher.stop(settings.shutdown_grace_seconds)
            if left:
                logger.warning("%d notification(s) kept in %s for the next start", left, settings.notification_store)
            gateway.store.close()
            await gateway.upstream.close()
            gateway.access_log.stop()

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
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    app.state.gateway = gateway
    observe = RequestObserver(gateway.access_log)
    limits = RequestLimits(settings.max_in_flight)
    hot = HotPaths(ObservedApp(app, observe), settings.max_body_bytes, observe, limits)
    hot.state = app.state
    delivery.mount(hot)
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
            self.observe(scope["method"], route_of(scope), status, elapsed, None, None, request_id)


def route_of(scope: Scope) -> str:
    """The route template, so that metric labels stay few whatever the paths."""
    matched = scope.get("route")
    return str(getattr(matched, "path", "unmatched"))
