"""The content cache in two levels: this process's memory (L1) in front of Redis (L2).

- ``prepare(client, visitor, context)``, awaited before a lookup: when memory has nothing for the
  visitor in that context, its content is read from Redis into memory (one GET); the lookup that follows
  is the in-memory one, unchanged.
- ``fill`` stores in memory at once and writes to Redis behind (with the cache's lifetime plus its
  stale window as the key's TTL).
- Purges (all, a client, an mbox of a client or everywhere, a visitor) take effect in this process at
  once, bump shared generations in Redis and are published on a channel every gateway listens to: each
  applies them to its memory when the message arrives. The gateway that purged answers once its own
  copy of the message came back through Redis, by which time Redis has handed it to every subscriber.
  Content read from Redis carries the generations it was filled under: older than the current ones is a
  miss.

With Redis down the cache is the in-memory one; purges made meanwhile are sent once Redis is back, and
the generations are read again from Redis whenever the connection comes back (those of this gateway that
are ahead, Redis having lost its data, are written back). Another gateway's purge always moves this one's
generation on, even past a lower count from Redis: a purge is never ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from proxy.content.cache import CachedMbox, CacheLimits, InMemoryContentCache, VisitorContent
from proxy.shared.connection import FAILURES, Background, SharedRedis, Unavailable, stop_task

logger = logging.getLogger("proxy.shared")
PUBLISHED_WAIT_S = 1.0
MAX_PENDING_PURGES = 10_000
# HSET field value for each (field, value) whose stored value is lower: generations only go up.
RAISE_GENERATIONS = """
local half = #ARGV / 2
for i = 1, half do
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if stored < tonumber(ARGV[half + i]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[half + i])
  end
end
return 0
"""


def cached_mbox(name: str, options: bytes, metrics: bytes, events: bytes) -> CachedMbox:
    """A CachedMbox from the bytes it was stored as (without decoding its tokens again)."""
    entry = CachedMbox.__new__(CachedMbox)
    entry.name = name
    entry.options_json = options
    entry.metrics_json = metrics
    entry.events = events
    display, click, _ = orjson.loads(events)
    entry.has_display = bool(display)
    entry.has_click = bool(click)
    return entry


class SharedContentCache(InMemoryContentCache):
    remote = True

    def __init__(self, redis: SharedRedis, limits: CacheLimits, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limits, clock)
        self.redis = redis
        self.channel = redis.key("purges")
        self.generations_key = redis.key("generations")
        self.key_ttl_ms = int((limits.ttl_seconds + limits.stale_seconds) * 1000)
        self._writes: dict[str, bytes] = {}
        self._write_scheduled = False
        self._writing: set[asyncio.Task[Any]] = set()
        self._pending_purges: list[dict[str, Any]] = []
        self._echoes: dict[str, asyncio.Future[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._background = Background()
        self._pubsub_client = redis.connect(None)  # blocking reads: no socket timeout
        self._raise_stored = redis.client.register_script(RAISE_GENERATIONS)
        self.read_from_redis = 0
        redis.when_up(self.catch_up)

    # --- reading through --------------------------------------------------------------------------------

    async def prepare(self, client: str, visitor: str, context: str) -> None:
        """Bring the visitor's content from Redis into memory unless memory has it for this context."""
        content = self._visitors.get((client, visitor))
        if not self.redis.up or (
            content is not None
            and content.context == context
            and content.generation == self._generation(client)
            and content.expires_at >= self.clock()
        ):
            return
        try:
            raw = await self.redis.run(lambda: self.redis.client.get(self._key(client, visitor)))
        except Unavailable:
            return
        if raw is None:
            return
        try:
            loaded = self._load(client, raw)
        except (orjson.JSONDecodeError, ValueError, TypeError, KeyError):
            logger.warning("unreadable cache entry in redis for client %s", client)
            return
        if loaded is None:
            return
        current = self._visitors.get((client, visitor))
        if current is not None and current is not content and current.context == context:
            return  # filled meanwhile
        self.read_from_redis += 1
        self._store(client, visitor, loaded)

    def _key(self, client: str, visitor: str) -> str:
        return self.redis.key("content", client, visitor)

    def _dump(self, content: VisitorContent) -> bytes:
        return orjson.dumps(
            {
                "c": content.context,
                "g": list(content.generation),
                "mg": {name: list(g) for name, g in content.mbox_generations.items()},
                "m": [
                    [e.name, *map(orjson.Fragment, (e.options_json, e.metrics_json, e.events))]
                    for e in content.mboxes.values()
                ],
                "x": time.time() + (content.expires_at - self.clock()),
            }
        )

    def _load(self, client: str, raw: bytes) -> VisitorContent | None:
        """The stored content, if it is still current (its generations are this cache's)."""
        document = orjson.loads(raw)
        generation = tuple(document["g"])
        if generation != self._generation(client):
            return None
        entries = {}
        mbox_generations = {}
        for name, options, metrics, events in document["m"]:
            stored = tuple(document["mg"].get(name, (0, 0)))
            if stored != self._mbox_generation(client, name):
                continue
            entries[name] = cached_mbox(name, orjson.dumps(options), orjson.dumps(metrics), orjson.dumps(events))
            mbox_generations[name] = stored
        left = float(document.get("x", 0)) - time.time()
        if not entries or left <= 0:
            return None
        return VisitorContent(
            context=document["c"],
            mboxes=entries,
            expires_at=self.clock() + min(left, self.ttl),
            generation=generation,
            mbox_generations=mbox_generations,
        )

    # --- writing behind ---------------------------------------------------------------------------------

    def fill(self, client: str, visitor: str, context: str, mboxes: Iterable[CachedMbox]) -> None:
        super().fill(client, visitor, context, mboxes)
        content = self._visitors.get((client, visitor))
        if content is None or content.context != context or not self.redis.up:
            return
        self._writes[self._key(client, visitor)] = self._dump(content)
        if not self._write_scheduled:
            self._write_scheduled = True
            writing = self._spawn(self._write())
            self._writing.add(writing)
            writing.add_done_callback(self._writing.discard)

    async def _write(self) -> None:
        await asyncio.sleep(0)  # the fills of this turn of the loop in one pipeline
        self._write_scheduled = False
        writes, self._writes = self._writes, {}
        if not writes:
            return

        async def write() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            for key, value in writes.items():
                pipe.set(key, value, px=self.key_ttl_ms)
            await pipe.execute()

        with contextlib.suppress(Unavailable):
            await self.redis.run(write)  # lost with Redis: this gateway keeps them in memory

    # --- purges -----------------------------------------------------------------------------------------

    def purge_visitor(self, client: str, visitor: str) -> bool:
        purged = super().purge_visitor(client, visitor)
        self._writes.pop(self._key(client, visitor), None)  # a fill not written yet would undo the purge
        self._share({"op": "visitor", "client": client, "visitor": visitor})
        return purged

    def purge_mbox(self, client: str | None, mbox: str) -> None:
        super().purge_mbox(client, mbox)
        self._share({"op": "mbox", "client": client, "mbox": mbox})

    def purge_client(self, client: str) -> None:
        super().purge_client(client)
        self._share({"op": "client", "client": client})

    def purge_all(self) -> None:
        super().purge_all()
        self._share({"op": "all"})

    def _share(self, purge: dict[str, Any]) -> None:
        purge["from"] = self.redis.instance
        purge["id"] = f"{self.redis.instance}-{time.monotonic_ns()}"
        self._pending_purges.append(purge)
        if len(self._pending_purges) > MAX_PENDING_PURGES:
            # Too many kept through an outage: one purge of everything stands for them all.
            self._pending_purges = [{"op": "all", "from": purge["from"], "id": purge["id"] + "-all"}]
        if self.redis.up:
            self._spawn(self._send_purges())

    async def published(self) -> None:
        """Wait until the fills made here are in Redis, and (a moment at most) until the purges made here have
        gone round through Redis."""
        if self._writing:
            await asyncio.wait(set(self._writing))
        if self._pending_purges and self.redis.up:
            await self._send_purges()
        waiting = {key: future for key, future in self._echoes.items() if not future.done()}
        if waiting:
            await asyncio.wait(waiting.values(), timeout=PUBLISHED_WAIT_S)
            for key, future in waiting.items():
                if not future.done():  # its message was lost with a connection: wait no more for it
                    future.set_result(None)
                    self._echoes.pop(key, None)

    async def _send_purges(self) -> None:
        purges, self._pending_purges = self._pending_purges, []
        if not purges:
            return
        loop = asyncio.get_running_loop()
        for purge in purges:
            self._echoes.setdefault(purge["id"], loop.create_future())

        async def send() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            for purge in purges:
                field = generation_field(purge)
                if field is not None:
                    pipe.hincrby(self.generations_key, field, 1)
                else:
                    pipe.delete(self._key(purge["client"], purge["visitor"]))
            results = await pipe.execute()
            publish = self.redis.client.pipeline(transaction=False)
            for purge, result in zip(purges, results, strict=True):
                if generation_field(purge) is not None:
                    purge["generation"] = int(result)
                publish.publish(self.channel, orjson.dumps(purge))
            await publish.execute()

        try:
            await self.redis.run(send)
        except Unavailable:
            self._pending_purges[:0] = purges  # sent once Redis is back
            for purge in purges:
                echo = self._echoes.pop(purge["id"], None)
                if echo is not None and not echo.done():
                    echo.set_result(None)

    def _apply(self, purge: dict[str, Any]) -> None:
        """A purge published by any gateway (this one included): make memory agree."""
        self.counters.purges_received += 1
        echo = self._echoes.pop(str(purge.get("id")), None)
        if echo is not None and not echo.done():
            echo.set_result(None)
        op = purge.get("op")
        foreign = purge.get("from") != self.redis.instance
        if op == "visitor":
            if foreign:
                self._writes.pop(self._key(purge["client"], purge["visitor"]), None)
                InMemoryContentCache.purge_visitor(self, purge["client"], purge["visitor"])
            return
        generation = purge.get("generation")
        if not isinstance(generation, int):
            return
        self._raise_generation(op, purge.get("client"), purge.get("mbox"), generation, bump=foreign)

    def _raise_generation(self, op: Any, client: Any, mbox: Any, generation: int, bump: bool = False) -> None:
        """Generations only go up: a gateway's own purge, counted here first, is not counted twice. Another
        gateway's purge (``bump``) moves this one's generation on even when Redis's is behind it (Redis lost
        its data and counts again from 0): a purge is never ignored."""
        step = 1 if bump else 0
        if op == "all":
            self._all_generation = max(self._all_generation + step, generation)
        elif op == "client" and client:
            self._generations[client] = max(self._generations.get(client, 0) + step, generation)
        elif op == "mbox" and mbox:
            key = (client or None, mbox)
            self._mbox_generations[key] = max(self._mbox_generations.get(key, 0) + step, generation)

    async def load_generations(self) -> None:
        """Take the generations Redis holds; give it those of this gateway that are ahead (Redis lost
        them), so that gateways starting later agree with this one."""
        ahead = self._local_generations()
        if ahead:
            fields = list(ahead)
            await self._raise_stored(keys=[self.generations_key], args=[*fields, *(ahead[f] for f in fields)])
        stored: dict[Any, Any] = await self.redis.client.hgetall(self.generations_key)
        for raw_field, raw_value in stored.items():
            field, value = raw_field.decode(), int(raw_value)
            if field == "all":
                self._raise_generation("all", None, None, value)
            elif field.startswith("client:"):
                self._raise_generation("client", field.removeprefix("client:"), None, value)
            elif field.startswith("mbox:"):
                client, _, mbox = field.removeprefix("mbox:").partition(":")
                self._raise_generation("mbox", client or None, mbox, value)

    def _local_generations(self) -> dict[str, int]:
        local = {f"client:{client}": g for client, g in self._generations.items() if g}
        local.update({f"mbox:{client or ''}:{mbox}": g for (client, mbox), g in self._mbox_generations.items() if g})
        if self._all_generation:
            local["all"] = self._all_generation
        return local

    # --- listening ----------------------------------------------------------------------------------------

    async def catch_up(self) -> None:
        """Redis is (back) up: listen again, take the generations it holds, send the purges made meanwhile."""
        # A listener still waiting on the connection of before the outage may be on a dead one, unknowing.
        await stop_task(self._listener)
        ready = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(self._listen(ready), name="cache-purges")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ready), 2.0)
        await self.load_generations()
        if self._pending_purges:
            self._spawn(self._send_purges())

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        pubsub = self._pubsub_client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            if not ready.done():
                ready.set_result(None)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    self._apply(orjson.loads(message["data"]))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    logger.warning("unreadable cache purge message")
        except FAILURES as exc:
            self.redis.failed(exc)  # listened again when Redis is back
        finally:
            if not ready.done():
                ready.set_result(None)
            with contextlib.suppress(*FAILURES):
                await pubsub.aclose()

    async def close(self) -> None:
        await self._background.cancel()
        await stop_task(self._listener)
        with contextlib.suppress(*FAILURES):
            await self._pubsub_client.aclose()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        return self._background.spawn(coroutine)


def generation_field(purge: dict[str, Any]) -> str | None:
    op = purge.get("op")
    if op == "all":
        return "all"
    if op == "client":
        return f"client:{purge['client']}"
    if op == "mbox":
        return f"mbox:{purge.get('client') or ''}:{purge['mbox']}"
    return None
