"""The parts gateways share on Redis, built together over one connection (``build_shared``), for the
composition root (``proxy.gateway``) when ``redis_url`` is set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.content.cache import CacheLimits
from proxy.content.redis_cache import SharedContentCache
from proxy.content.redis_sessions import SharedSessionStore
from proxy.management.redis_activation import SharedActivationGuard
from proxy.management.redis_ratelimit import SharedCallBudget, SharedClientKeys
from proxy.notifications.policy import Backoff
from proxy.notifications.queue import Counters
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.notifications.stream import SharedNotificationQueue
from proxy.notifications.stream_flusher import StreamFlusher
from proxy.settings import AdminSettings, Settings
from proxy.shared.connection import SharedRedis
from proxy.upstream import Upstream


@dataclass
class SharedParts:
    admin: AdminSettings
    redis: SharedRedis
    sessions: SharedSessionStore
    cache: SharedContentCache
    queue: SharedNotificationQueue
    flusher: StreamFlusher
    guard: SharedActivationGuard
    keys: SharedClientKeys
    admin_budget: SharedCallBudget

    async def start(self) -> None:
        await self.redis.start()
        self.flusher.start()

    async def stop(self, grace_s: float) -> int:
        """Flush what this gateway holds from the stream, write what it changed, stop every task of its
        own, then let go of Redis; how many notifications are left for the other gateways to claim."""
        left = await self.flusher.stop(grace_s)
        await self.queue.close()
        await self.sessions.close()
        await self.guard.close()
        await self.cache.close()
        await self.redis.close()
        return left

    def budget(self, client: str) -> SharedCallBudget:
        """A client's bulk profile API budget (50 calls a minute), one for all gateways."""
        admin = self.admin
        return SharedCallBudget(self.redis, f"bulk-profile:{client}", admin.calls_per_minute, admin.queue_seconds)

    def document(self) -> dict[str, Any]:
        """The stream as this gateway sees it, for ``/_proxy/queue``."""
        return {**self.queue.shared_document(), **self.flusher.document()}

    def check(self) -> dict[str, Any]:
        check = self.redis.check()
        check["streamDepth"] = self.queue.stream_depth
        check["held"] = self.flusher.held
        return check


def build_shared(
    settings: Settings,
    clock: Callable[[], float],
    upstream: Upstream,
    store: NotificationStore,
    counters: Counters,
    refusals: RefusalPolicy,
    backoff: Backoff,
) -> SharedParts:
    """The shared variant of every shareable part, on one connection to Redis; ``store`` is the local log
    that takes notifications while Redis is down; ``counters``, ``refusals`` and ``backoff`` those of its
    flusher."""
    shared, notes, admin = settings.redis, settings.notifications, settings.admin
    redis = SharedRedis(shared)
    sessions = SharedSessionStore(
        redis, settings.session_ttl_seconds, settings.session_max_visitors, shared.session_sync_seconds, clock
    )
    cache = SharedContentCache(redis, CacheLimits.of(settings), clock)
    queue = SharedNotificationQueue(store, notes.batch_size, redis, counters)
    flusher = StreamFlusher(
        queue,
        upstream,
        refusals,
        backoff,
        max_delay_s=notes.max_delay_s,
        claim_idle_s=shared.claim_idle_s,
        max_held=shared.stream_max_read,
    )
    return SharedParts(
        admin,
        redis,
        sessions,
        cache,
        queue,
        flusher,
        SharedActivationGuard(redis, admin.activation_job_timeout_seconds),
        SharedClientKeys(settings.client_keys, settings.client_key_rate, redis),
        SharedCallBudget(redis, "admin", admin.calls_per_minute, admin.queue_seconds),
    )
