"""The connection to Redis, and whether Redis is up.

Every shared part asks ``available`` before it spends a command: while Redis is down that is one
attribute read, so a dead Redis costs the hot path nothing. A command that fails (connection refused
or cut, Redis still loading its data, or slower than ``redis_timeout_ms``) marks Redis down; a background
task pings it every ``redis_retry_ms`` and, once it answers, marks it up again and tells the parts that
wait for that (they catch up: write what they kept, reload the cache generations, subscribe again). An
error answer of a Redis that is up (OOM, WRONGTYPE, NOGROUP) fails that command alone. Either way the
caller gets ``Unavailable`` and falls back: no Redis error reaches a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError

from proxy.settings import RedisSettings

logger = logging.getLogger("proxy.shared")

# What a failing Redis raises through redis-py: its own errors, and the socket's.
FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError, asyncio.TimeoutError)


class Unavailable(Exception):
    """Redis is down (or has just failed): the caller falls back to what it keeps locally."""


def refused(exc: BaseException) -> bool:
    """An error answer from a Redis that is up (not one loading, read-only or gone): that command fails,
    Redis does not count as down, so one odd answer (OOM, NOGROUP) does not switch every part to memory."""
    return isinstance(exc, ResponseError) and not isinstance(exc, ReadOnlyError)


class Background:
    """Tasks started and not awaited: referenced until done (the loop keeps only weak references), and
    cancelled together at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background redis task failed", exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def cancel(self, within_s: float = 1.0) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=within_s)


async def stop_task(task: asyncio.Task[Any] | None, within_s: float = 1.0) -> None:
    """Cancel a task and wait for it to end, a moment at most: shutdown never hangs on one that does not."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=within_s)


class SharedRedis:
    def __init__(self, settings: RedisSettings) -> None:
        self.url = settings.url
        self.prefix = settings.prefix
        self.timeout_s = settings.timeout_s
        self.retry_s = settings.retry_s
        # This process among the gateways: a consumer name in the stream's group, a holder of locks.
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.client = self.connect(self.timeout_s)
        self.up = False
        self.down_since: float | None = time.monotonic()
        self.last_error = "not connected yet"
        self.outages = 0
        self._on_up: list[Callable[[], Awaitable[None]]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._closed = False

    def connect(self, timeout_s: float | None, **extra: Any) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            socket_timeout=timeout_s,
            socket_connect_timeout=self.timeout_s,
            # Once more at once on a connection that broke (Redis restarted), never a wait between; not after
            # a timeout, whose command may have been carried out (an XADD twice).
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=0,
            **extra,
        )

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def available(self) -> bool:
        return self.up

    def when_up(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``callback`` each time Redis comes back (and at start, once it answers)."""
        self._on_up.append(callback)

    # --- state -----------------------------------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        """A command failed: Redis counts as down until a ping answers again."""
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.up:
            self.up = False
            self.down_since = time.monotonic()
            self.outages += 1
            logger.warning("redis unavailable (%s); serving from memory and spooling notifications locally", exc)
            self._woken.set()

    async def run(self, command: Callable[[], Awaitable[Any]]) -> Any:
        """One command (or pipeline); raises Unavailable when Redis is down or the command fails."""
        if not self.up:
            raise Unavailable(self.last_error)
        try:
            return await command()
        except FAILURES as exc:
            if refused(exc):
                raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
            self.failed(exc)
            raise Unavailable(self.last_error) from exc

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (without waiting long: a gateway starts and serves without Redis), then watch."""
        await self._ping()
        self._watcher = asyncio.create_task(self._watch(), name="redis-watch")

    async def close(self) -> None:
        # The flag ends the watch even if a cancellation is lost (wait_for before Python 3.12 drops one that
        # comes as the event it waits for is set, as when Redis fails just before shutdown).
        self._closed = True
        await stop_task(self._watcher, max(1.0, self.retry_s * 2))
        with contextlib.suppress(*FAILURES):
            await self.client.aclose()

    async def _ping(self) -> bool:
        try:
            await self.client.ping()
        except FAILURES as exc:
            self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return False
        if not self.up:
            was_down = self.down_since is not None and self.outages > 0
            self.up = True
            self.down_since = None
            self.last_error = ""
            if was_down:
                logger.warning("redis available again; catching up")
            for callback in self._on_up:
                try:
                    await callback()
                except Unavailable:
                    if not self.up:
                        return False
                except FAILURES as exc:
                    if not refused(exc):
                        self.failed(exc)
                        return False
                    logger.warning("catching up with redis: %s", exc)
                except Exception:
                    logger.exception("catching up with redis failed")
        return True

    async def _watch(self) -> None:
        while not self._closed:
            try:
                if self.up:
                    # Up: a ping now and then notices an outage even while nothing is sent.
                    self._woken.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._woken.wait(), max(1.0, self.retry_s * 4))
                    if self.up:
                        await self._ping_or_fail()
                        continue
                await asyncio.sleep(self.retry_s)
                await self._ping()
            except Exception:  # the watch must outlive any surprise, or Redis would never count as back
                logger.exception("watching redis failed")
                await asyncio.sleep(self.retry_s)

    async def _ping_or_fail(self) -> None:
        try:
            await self.client.ping()
        except FAILURES as exc:
            self.failed(exc)

    def check(self) -> dict[str, Any]:
        """The readiness entry: a gateway without Redis still serves, so it stays ready, degraded."""
        if self.up:
            return {"ok": True, "available": True, "detail": "redis: connected"}
        since = round(time.monotonic() - self.down_since, 1) if self.down_since is not None else None
        return {
            "ok": True,
            "available": False,
            "degraded": True,
            "downForSeconds": since,
            "detail": f"redis: unavailable, spooling locally ({self.last_error})",
        }
