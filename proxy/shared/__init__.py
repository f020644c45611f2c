"""Several gateways acting as one, sharing their state on Redis (when ``redis_url`` is set).

What is shared: sessions and edge affinity (``sessions``), prefetched content and its purges
(``cache``), notifications (``notifications``: a stream with a consumer group), the Admin API call
budget and the client keys' rate (``ratelimit``) and the one-job-per-audience guard (``activation``).
Each keeps the in-memory part of a single gateway in front of or beside Redis, and falls back to it
while Redis is down (``connection`` tells which).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.notifications.policy import Backoff
from proxy.notifications.queue import Counters
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.settings import Settings
from proxy.shared.activation import SharedActivationGuard
from proxy.shared.cache import SharedContentCache
from proxy.shared.connection import SharedRedis
from proxy.shared.notifications import SharedNotificationQueue
from proxy.shared.ratelimit import SharedCallBudget, SharedClientKeys
from proxy.shared.sessions import SharedSessionStore
from proxy.shared.stream_flusher import StreamFlusher
from proxy.upstream import Upstream


@dataclass
class SharedParts:
    settings: Settings
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
        settings = self.settings
        return SharedCallBudget(
            self.redis, f"bulk-profile:{client}", settings.admin_calls_per_minute, settings.admin_queue_seconds
        )

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
    redis = SharedRedis(settings)
    sessions = SharedSessionStore(
        redis,
        settings.session_ttl_seconds,
        settings.session_max_visitors,
        settings.redis_session_sync_seconds,
        clock,
    )
    cache = SharedContentCache(
        redis,
        ttl_seconds=settings.cache_ttl_seconds or settings.session_ttl_seconds,
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
        stale_seconds=settings.cache_stale_seconds,
        clock=clock,
    )
    queue = SharedNotificationQueue(store, settings.notification_batch_size, redis, counters)
    flusher = StreamFlusher(
        queue,
        upstream,
        refusals,
        backoff,
        max_delay_s=settings.notification_max_delay_ms / 1000,
        claim_idle_s=settings.redis_claim_idle_ms / 1000,
        max_held=settings.redis_stream_max_read,
    )
    queue.flusher = flusher
    return SharedParts(
        settings,
        redis,
        sessions,
        cache,
        queue,
        flusher,
        SharedActivationGuard(redis, settings.activation_job_timeout_seconds),
        SharedClientKeys(settings.client_keys, settings.client_key_rate, redis),
        SharedCallBudget(redis, "admin", settings.admin_calls_per_minute, settings.admin_queue_seconds),
    )
