"""The composition root: every long-lived part of a gateway, built once, and their lifecycle.

Each part that gateways may share is chosen here, once, before anything uses it: in memory for a gateway
of its own, on Redis (``proxy.shared``) when ``redis_url`` is set. Nothing replaces a part afterwards.
The notification log on disk, its flusher and the refusal policy are there either way: with Redis they
take what cannot reach the stream while Redis is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxy.content.cache import CacheLimits, InMemoryContentCache
from proxy.content.prefetch import PrefetchPlanner
from proxy.content.service import ContentService
from proxy.content.sessions import InMemorySessionStore, SessionLimiter
from proxy.decisioning.geo import GeoLookup
from proxy.decisioning.local import LocalDecisions
from proxy.decisioning.source import ArtifactSource
from proxy.management.activation import ActivationGuard
from proxy.management.auth import ClientKeys
from proxy.management.credentials import TokenProvider
from proxy.management.ratelimit import CallBudget
from proxy.notifications.flusher import Flusher
from proxy.notifications.policy import Backoff
from proxy.notifications.queue import Counters, NotificationQueue
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.ops import logs
from proxy.ops.logs import AccessLog
from proxy.ops.metrics import UpstreamMetrics
from proxy.settings import Settings
from proxy.upstream import Upstream

if TYPE_CHECKING:
    from proxy.redis_parts import SharedParts

logger = logging.getLogger("proxy")


@dataclass
class Shareable:
    """The parts that are either a gateway's own (in memory) or shared with other gateways (on Redis)."""

    sessions: InMemorySessionStore
    cache: InMemoryContentCache
    queue: NotificationQueue
    keys: ClientKeys
    guard: ActivationGuard
    admin_budget: CallBudget
    budget_for: Callable[[str], CallBudget]  # a client's bulk profile API budget


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
    budget_for: Callable[[str], CallBudget]
    access_log: AccessLog
    content: ContentService  # what visitors see, over the parts above
    shared: SharedParts | None  # with Redis: its connection and the stream's flusher

    def redis_check(self) -> dict[str, Any] | None:
        return self.shared.check() if self.shared is not None else None

    def decisioning_check(self) -> dict[str, Any] | None:
        """The rules artifact in use, when deciding on device (not ready on device only without one)."""
        on_device = self.content.on_device
        if on_device is None:
            return None
        status = on_device.local.source.status()
        method = on_device.local.method
        loaded = status["ok"]
        status["method"] = method
        status["geoLookups"] = on_device.geo.lookups if on_device.geo is not None else 0
        status["ok"] = loaded or method != "on-device"  # hybrid leaves what it cannot decide to the edge
        status["detail"] = (
            f"artifact {status['version']} read {status['ageSeconds']} s ago"
            if loaded
            else f"no artifact read yet from {status['location']}"
        )
        return status

    def shared_document(self) -> dict[str, Any] | None:
        """The Redis stream's figures, when gateways share one."""
        return self.shared.document() if self.shared is not None else None

    async def start(self) -> None:
        await self.upstream.start()
        self.store.open()
        self.flusher.start()
        if self.shared is not None:
            await self.shared.start()
        self.access_log.start()
        if self.content.on_device is not None:
            await self.content.on_device.local.source.start()

    async def stop(self) -> None:
        if self.content.on_device is not None:
            await self.content.on_device.local.source.stop()
        grace = self.settings.shutdown_grace_seconds
        if self.shared is not None:
            held = await self.shared.stop(grace)
            if held:
                logger.warning("%d notification(s) left in the redis stream for the other gateways", held)
        left = await self.flusher.stop(grace)
        if left:
            logger.warning("%d notification(s) kept in %s for the next start", left, self.settings.notification_store)
        self.store.close()
        await self.upstream.close()
        self.access_log.stop()


def build_gateway(
    settings: Settings, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time
) -> Gateway:
    upstream = Upstream(settings.upstream_client, UpstreamMetrics())
    notes = settings.notifications
    store = NotificationStore(notes.store, notes.max_backlog, fsync=notes.fsync, dead_letter_path=notes.dead_letters)
    refusals = RefusalPolicy(notes.refusal_calls_per_visitor, notes.refusal_calls_per_minute)
    counters = Counters()  # one set for the local log and the stream alike
    # The local log's queue: every notification's path without Redis, and the fallback with it.
    local = NotificationQueue(store, notes.batch_size, counters)
    backoff = Backoff(notes.retry_base_s, notes.retry_cap_s, notes.max_attempts)
    flusher = Flusher(local, upstream, refusals, backoff, max_delay_s=notes.max_delay_s)
    shared: SharedParts | None = None
    if settings.redis_url:
        from proxy.redis_parts import build_shared  # imports redis only when it is used

        shared = build_shared(settings, clock, upstream, store, counters, refusals, backoff)
        parts = Shareable(
            shared.sessions, shared.cache, shared.queue, shared.keys, shared.guard, shared.admin_budget, shared.budget
        )
    else:
        parts = own_parts(settings, clock, local)
    limiter = SessionLimiter(settings.session_max_concurrent)
    planner = PrefetchPlanner(settings.prefetch_groups, learn=settings.prefetch_learn)
    decisioning = settings.decisioning
    local_decisions = None
    if decisioning.method != "server-side":
        artifacts = ArtifactSource(decisioning.artifact, decisioning.polling_s, upstream, clock)
        local_decisions = LocalDecisions(decisioning.method, artifacts, wall_clock)
    content = ContentService(
        upstream,
        parts.sessions,
        limiter,
        parts.cache,
        planner,
        parts.queue,
        settings.default_content,
        local=local_decisions,
        geo=GeoLookup(upstream) if local_decisions is not None else None,
    )
    return Gateway(
        settings=settings,
        upstream=upstream,
        sessions=parts.sessions,
        limiter=limiter,
        keys=parts.keys,
        cache=parts.cache,
        planner=planner,
        store=store,
        queue=parts.queue,
        flusher=flusher,
        refusals=refusals,
        tokens=TokenProvider(settings.ims, upstream),
        guard=parts.guard,
        admin_budget=parts.admin_budget,
        budget_for=parts.budget_for,
        access_log=AccessLog(
            settings.access_log,
            settings.log_visitor_salt.get_secret_value()
            if settings.log_visitor_salt
            else logs.stored_salt(settings.notification_store.parent / "log-salt"),
        ),
        content=content,
        shared=shared,
    )


def own_parts(settings: Settings, clock: Callable[[], float], queue: NotificationQueue) -> Shareable:
    """A gateway of its own: every shareable part in memory."""

    admin = settings.admin

    def budget_for(client: str) -> CallBudget:
        return CallBudget(admin.calls_per_minute, admin.queue_seconds)

    return Shareable(
        sessions=InMemorySessionStore(settings.session_ttl_seconds, settings.session_max_visitors, clock),
        cache=InMemoryContentCache(CacheLimits.of(settings), clock),
        queue=queue,
        keys=ClientKeys(settings.client_keys, settings.client_key_rate),
        guard=ActivationGuard(admin.activation_job_timeout_seconds),
        admin_budget=CallBudget(admin.calls_per_minute, admin.queue_seconds),
        budget_for=budget_for,
    )
