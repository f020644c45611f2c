"""The Admin and bulk profile APIs' call budget (50 calls a minute), and each client key's rate, shared by
every gateway on Redis.

The same sliding window as ``proxy.management.ratelimit.CallBudget``, kept in a sorted set (a slot per call, scored
with when the call is made) by one Lua script on Redis's clock: a call takes its slots at once, first
come first served across the gateways, and waits for them here, up to the queue bound; past it, 429
with the Retry-After at which a slot frees. With Redis down each gateway keeps its own window (together
they may then spend up to N times the budget; the readiness check says Redis is down).

A client key's rate (``client_key_rate``) is the moving window of ``limits``, kept on Redis by its own
storage (on the gateway's connections): one count for the key whichever gateway it calls; with Redis
down, each gateway's window in memory.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

from proxy.failures import BudgetExhausted
from proxy.management.auth import ClientKeys
from proxy.management.ratelimit import HELD_S, CallBudget
from proxy.shared.connection import SharedRedis, Unavailable

T = TypeVar("T")

# Returns the wait in milliseconds (slots taken), or -wait when the caller is refused.
SPEND = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local held = tonumber(ARGV[1])
local per_minute = tonumber(ARGV[2])
local calls = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - held)
local count = redis.call('ZCARD', KEYS[1])
local wait = 0
local overflow = count + calls - per_minute
if overflow > 0 then
  local slot = redis.call('ZRANGE', KEYS[1], overflow - 1, overflow - 1, 'WITHSCORES')
  wait = math.max(0, tonumber(slot[2]) + held - now)
end
if wait > max_wait then
  return -math.max(wait, 1)
end
for i = 1, calls do
  redis.call('ZADD', KEYS[1], now + wait, ARGV[5] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], held + max_wait + 1000)
return wait
"""


class SharedCallBudget(CallBudget):
    def __init__(
        self,
        redis: SharedRedis,
        name: str,
        per_minute: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(per_minute, max_wait_s, clock)
        self.redis = redis
        self.key = redis.key("budget", name)
        self._spend = redis.client.register_script(SPEND)

    async def spend(self, calls: int = 1) -> None:
        if calls > self.per_minute or not self.redis.up:
            await super().spend(calls)
            return
        token = f"{self.redis.instance}:{secrets.token_hex(6)}"
        args: list[Any] = [int(HELD_S * 1000), self.per_minute, calls, int(self.max_wait_s * 1000), token]
        try:
            wait_ms = int(await self.redis.run(lambda: self._spend(keys=[self.key], args=args)))
        except Unavailable:
            await super().spend(calls)
            return
        if wait_ms < 0:
            self.rejected += 1
            retry = math.ceil(-wait_ms / 1000)
            raise BudgetExhausted(f"upstream allows {self.per_minute} calls a minute; try again in {retry} s", retry)
        if wait_ms > 0:
            self.waited += 1
            await asyncio.sleep(wait_ms / 1000)


def limits_uri(url: str) -> str:
    """The ``limits`` storage URI of a redis-py URL (the connections themselves are the gateway's)."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


class SharedLimiter:
    """``limits``' moving window on Redis for every gateway; this gateway's own in memory while Redis is down
    (or refuses the command)."""

    def __init__(self, local: MovingWindowRateLimiter, redis: SharedRedis) -> None:
        self.local = local
        self.redis = redis
        # The gateway's own connections (limits types its options as plain values only).
        pool: dict[str, Any] = {"connection_pool": redis.client.connection_pool}
        storage = RedisStorage(
            limits_uri(redis.url), implementation="redispy", key_prefix=redis.key("client-rate"), **pool
        )
        self.shared = MovingWindowRateLimiter(storage)

    async def _either(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        if self.redis.up:
            try:
                return await self.redis.run(shared)
            except Unavailable:
                pass
        return await local()

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        return await self._either(
            lambda: self.shared.hit(item, *identifiers), lambda: self.local.hit(item, *identifiers)
        )

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return await self._either(
            lambda: self.shared.get_window_stats(item, *identifiers),
            lambda: self.local.get_window_stats(item, *identifiers),
        )


class SharedClientKeys(ClientKeys):
    """Client keys whose rate is counted once for all gateways."""

    def __init__(self, keys: dict[str, list[str]], rate: str, redis: SharedRedis) -> None:
        super().__init__(keys, rate)
        self._limiter = SharedLimiter(self._limiter, redis)  # type: ignore[assignment]
