"""Several gateways acting as one, sharing their state on Redis (when ``redis_url`` is set).

What is shared: sessions and edge affinity (``sessions``), prefetched content and its purges
(``cache``), notifications (``notifications``: a stream with a consumer group), the Admin API call
budget and the client keys' rate (``ratelimit``) and the one-job-per-audience guard (``activation``).
Each keeps the in-memory part of a single gateway in front of or beside Redis, and falls back to it
while Redis is down (``connection`` tells which).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxy.settings import Settings
from proxy.shared.activation import SharedActivationGuard
from proxy.shared.cache import SharedContentCache
from proxy.shared.connection import SharedRedis
from proxy.shared.notifications import SharedNotificationQueue, StreamFlusher
from proxy.shared.ratelimit import SharedCallBudget, SharedClientKeys
from proxy.shared.sessions import SharedSessionStore

if TYPE_CHECKING:
    from proxy.app import Gateway


@dataclass
class SharedParts:
    settings: Settings
    redis: SharedRedis
    sessions: SharedSessionStore
    cache: SharedContentCache
    queue: SharedNotificationQueue
    flusher: StreamFlusher
    guard: SharedActivationGuard

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


def share(gateway: Gateway, clock: Callable[[], float] = time.monotonic) -> SharedParts:
    """Swap the gateway's in-memory parts for their shared variants (before anything uses them)."""
    settings: Settings = gateway.settings
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
    queue = SharedNotificationQueue(gateway.store, settings.notification_batch_size, redis)
    queue.counters = gateway.queue.counters  # one set of counters with the local flusher's
    flusher = StreamFlusher(
        queue,
        gateway.upstream,
        gateway.refusals,
        max_delay_s=settings.notification_max_delay_ms / 1000,
        claim_idle_s=settings.redis_claim_idle_ms / 1000,
        max_held=settings.redis_stream_max_read,
        retry_base_s=settings.notification_retry_base_ms / 1000,
        retry_cap_s=settings.notification_retry_cap_ms / 1000,
        max_attempts=settings.notification_max_attempts,
    )
    queue.flusher = flusher
    guard = SharedActivationGuard(redis, settings.activation_job_timeout_seconds)
    gateway.sessions = sessions
    gateway.cache = cache
    gateway.queue = queue
    gateway.guard = guard
    gateway.keys = SharedClientKeys(settings.client_keys, settings.client_key_rate, redis)
    gateway.admin_budget = SharedCallBudget(
        redis, "admin", settings.admin_calls_per_minute, settings.admin_queue_seconds
    )
    return SharedParts(settings, redis, sessions, cache, queue, flusher, guard)
