"""Notifications through a Redis Stream that every gateway writes to and every gateway flushes.

Accepting (``SharedNotificationQueue.add``): each notification is one stream entry (XADD), and the client
is answered once Redis has acknowledged it. The adds of one turn of the event loop share one pipeline.
With Redis down (or failing on this add) the notifications go to the gateway's local append-only log
instead, whose own flusher sends them straight to the edge: nothing is lost, and they are not sent twice
through Redis.

Flushing: ``proxy.notifications.stream_flusher``, by every gateway.

Riding along on a miss (a visitor's waiting notifications joining its next delivery call) is done only
for what waits in the local log: entries in the stream are flushed by whichever gateway holds them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import orjson

from proxy.notifications.model import BacklogFull, Group
from proxy.notifications.queue import Counters, NotificationQueue
from proxy.notifications.store import NotificationStore
from proxy.shared.connection import Background, SharedRedis, Unavailable

logger = logging.getLogger("proxy.notifications")
GROUP_NAME = "flushers"
SEPARATOR = "\x1f"


class SharedNotificationQueue(NotificationQueue):
    def __init__(
        self, store: NotificationStore, batch_size: int, redis: SharedRedis, counters: Counters | None = None
    ) -> None:
        super().__init__(store, batch_size, counters)
        self.redis = redis
        self.stream = redis.key("notifications")
        self.stream_depth = 0  # entries in the stream not acknowledged yet (refreshed by the flusher)
        self.streamed = 0
        self.spooled = 0
        self._buffer: list[dict[str, Any]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._background = Background()

    async def add(
        self, group: Group, edge_host: str | None, ids: dict[str, Any], notes: Sequence[dict[str, Any]]
    ) -> None:
        if not notes:
            return
        if self.redis.up:
            if self.stream_depth + len(notes) > self.store.max_backlog:
                raise BacklogFull(f"{self.store.max_backlog} notifications are waiting")
            key = SEPARATOR.join((group.client, group.visitor, group.session_id))
            ids_json = orjson.dumps(ids)
            created = repr(time.time())
            entries = [
                {
                    "g": key,
                    "e": edge_host or "",
                    "i": ids_json,
                    "p": orjson.dumps(note),
                    "n": str(note["id"]),
                    "t": created,
                }
                for note in notes
            ]
            try:
                await self._append(entries)
            except Unavailable:
                pass
            else:
                self.counters.accepted += len(notes)
                self.streamed += len(notes)
                self.stream_depth += len(notes)
                return
        await super().add(group, edge_host, ids, notes)
        self.spooled += len(notes)

    async def _append(self, entries: list[dict[str, Any]]) -> None:
        """XADD with the other adds of this turn of the loop; returns once Redis has them."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._buffer.extend(entries)
        self._waiting.append(done)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(lambda: self._background.spawn(self._write()))
        await done

    async def _write(self) -> None:
        self._scheduled = False
        buffer, self._buffer = self._buffer, []
        waiting, self._waiting = self._waiting, []

        async def write() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            for entry in buffer:
                pipe.xadd(self.stream, cast("dict[Any, Any]", entry))
            await pipe.execute()

        error: BaseException | None = None
        try:
            await self.redis.run(write)
        except Unavailable as exc:
            error = exc  # every add of the pipeline goes to the local log (some may be in both: same ids)
        except BaseException as exc:
            error = exc  # cancelled, or a surprise: the adds must not hang; they go to the local log
            if not isinstance(exc, Exception):
                raise
            logger.exception("adding notifications to the stream failed")
        finally:
            for future in waiting:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(Unavailable(str(error) or type(error).__name__))

    async def close(self) -> None:
        await self._background.cancel()

    def shared_document(self) -> dict[str, Any]:
        return {
            "redis": self.redis.up,
            "streamDepth": self.stream_depth,
            "streamed": self.streamed,
            "spooledLocally": self.spooled,
        }
