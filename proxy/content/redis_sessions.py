"""Sessions and edge affinity shared by every gateway on Redis, with this process's memory in front.

The request path stays synchronous (``resolve``, ``find``, ``link``, ``learn_edge`` as in memory);
what needs Redis happens in ``prepare``, awaited just before ``resolve``:

- the visitor is in memory (L1): nothing is awaited. If its record was last read from Redis more than
  ``redis_session_sync_seconds`` ago, it is read again in the background, which also slides its expiry
  in Redis (the 30 minutes after the visitor's last request, whichever gateway served it);
- it is not: its record is read from Redis under any of its ids, or, for a new visitor, created there
  atomically (a Lua script: of two gateways creating one visitor at once, the second adopts the first's
  record), before the request goes on.

Later changes (the edge learned from upstream, a tntId linked, a session the client supplied) are written
behind, batched per turn of the event loop. With Redis down, the store is the in-memory one; what changed
meanwhile is written once Redis is back.

In Redis: ``<prefix>session:<primary id>``, a hash (``s`` session, ``e`` edge host, ``l`` location,
``t`` tntId, ``p`` primary id, ``k:<id>`` for every id of the visitor), and ``<prefix>alias:<id>`` →
primary id for each of them; all expire with the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from proxy.content.sessions import InMemorySessionStore, SessionRecord, new_session_id
from proxy.shared.connection import Background, SharedRedis, Unavailable

logger = logging.getLogger("proxy.shared")
# Records waiting to be written while Redis is down: the most recent are kept.
MAX_DIRTY = 200_000

RESOLVE = """
local ttl = tonumber(ARGV[2])
local primary = false
for i = 1, #KEYS do
  local found = redis.call('GET', KEYS[i])
  if found and redis.call('EXISTS', ARGV[1] .. found) == 1 then
    primary = found
    break
  end
end
if not primary then
  if ARGV[3] == '' then return false end
  primary = ARGV[5]
  redis.call('DEL', ARGV[1] .. primary)
  redis.call('HSET', ARGV[1] .. primary, 's', ARGV[3], 'p', primary)
elseif ARGV[4] ~= '' then
  redis.call('HSET', ARGV[1] .. primary, 's', ARGV[4])
end
local record = ARGV[1] .. primary
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], primary, 'PX', ttl)
  redis.call('HSET', record, 'k:' .. ARGV[4 + i], '1')
end
redis.call('PEXPIRE', record, ttl)
return redis.call('HGETALL', record)
"""


class SharedRecord(SessionRecord):
    """A record that knows when it was last read from Redis and what Redis holds of it."""

    __slots__ = ("stored", "synced")

    def __init__(self, session_id: str, now: float) -> None:
        super().__init__(session_id, now)
        self.synced: float | None = None
        self.stored: tuple[Any, ...] | None = None


def snapshot(record: SessionRecord) -> tuple[Any, ...]:
    return (record.session_id, record.edge_host, record.location, record.tnt_id, len(record.keys))


def text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    decoded = value.decode() if isinstance(value, bytes) else value
    return decoded or None


class SharedSessionStore(InMemorySessionStore):
    record_type = SharedRecord
    remote = True

    def __init__(
        self,
        redis: SharedRedis,
        ttl_seconds: float,
        max_visitors: int,
        sync_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl_seconds, max_visitors, clock)
        self.redis = redis
        self.sync_seconds = sync_seconds
        self.ttl_ms = int(ttl_seconds * 1000)
        self._resolve = redis.client.register_script(RESOLVE)
        self._dirty: dict[int, SessionRecord] = {}
        self._write_scheduled = False
        self._writing: set[asyncio.Task[Any]] = set()
        self._background = Background()
        self.read_from_redis = 0
        redis.when_up(self.catch_up)

    # --- before resolve --------------------------------------------------------------------------------

    async def prepare(self, keys: list[str], supplied_session: str | None, create: bool = True) -> None:
        """Bring the visitor's record into memory from Redis (creating it there for a new visitor)."""
        if not keys or not self.redis.up:
            return
        record = self.find(keys)
        if record is not None:
            synced = getattr(record, "synced", None)
            now = self.clock()
            if synced is None or now - synced > self.sync_seconds:
                if isinstance(record, SharedRecord):
                    record.synced = now  # one read in flight per record
                self._spawn(self.sync(record))
            return
        session = (supplied_session or new_session_id()) if create else ""
        try:
            fields = await self.redis.run(lambda: self._call_resolve(keys, session, supplied_session or ""))
        except Unavailable:
            return
        if fields:
            self.read_from_redis += 1
            self._adopt(keys, fields)

    async def _call_resolve(self, keys: list[str], session: str, supplied: str) -> Any:
        aliases = [self.redis.key("alias", key) for key in keys]
        return await self._resolve(
            keys=aliases, args=[self.redis.key("session", ""), self.ttl_ms, session, supplied, *keys]
        )

    def _adopt(self, keys: list[str], raw: list[bytes] | dict[bytes, bytes]) -> SessionRecord:
        fields = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
        now = self.clock()
        session = text(fields.get(b"s")) or new_session_id()
        record = self.find(keys)
        if record is None:
            record = SharedRecord(session, now)
            primary = text(fields.get(b"p"))
            record.keys = [primary] if primary else []
        else:
            record.session_id = session
        record.edge_host = text(fields.get(b"e")) or record.edge_host
        record.location = text(fields.get(b"l")) or record.location
        record.tnt_id = text(fields.get(b"t")) or record.tnt_id
        known = [text(name[2:]) for name in fields if name.startswith(b"k:")]
        record.last_seen = now
        super().link(record, [*(k for k in known if k), *keys])
        if isinstance(record, SharedRecord):
            record.synced = now
            record.stored = (
                session,
                text(fields.get(b"e")),
                text(fields.get(b"l")),
                text(fields.get(b"t")),
                len(known),
            )
        self._mark(record)
        return record

    async def sync(self, record: SessionRecord) -> None:
        """Read the record again from Redis (sliding its expiry there), or write it there if Redis lost it."""
        if not record.keys:
            return
        try:
            fields = await self.redis.run(lambda: self._call_resolve(record.keys, record.session_id, ""))
        except Unavailable:
            if isinstance(record, SharedRecord):
                record.synced = None
            return
        if fields:
            self._adopt(record.keys, fields)

    # --- the synchronous API, with changes written behind -------------------------------------------------

    def link(self, record: SessionRecord, keys: Iterable[str]) -> None:
        super().link(record, keys)
        self._mark(record)

    def learn_edge(self, record: SessionRecord, edge_host: str | None, location: str | None) -> None:
        super().learn_edge(record, edge_host, location)
        self._mark(record)

    def forget(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        forgotten = super().forget(keys)
        if self.redis.up:
            self._spawn(self._forget(keys))
        return forgotten

    async def _forget(self, keys: list[str]) -> None:
        async def remove() -> None:
            aliases = [self.redis.key("alias", key) for key in keys]
            primaries = {text(p) for p in await self.redis.client.mget(aliases) if p}
            await self.redis.client.delete(*aliases, *(self.redis.key("session", p) for p in primaries if p))

        with contextlib.suppress(Unavailable):
            await self.redis.run(remove)

    # --- writing behind ------------------------------------------------------------------------------------

    def _mark(self, record: SessionRecord) -> None:
        if not record.keys or getattr(record, "stored", None) == snapshot(record):
            return
        self._dirty[id(record)] = record
        if len(self._dirty) > MAX_DIRTY:
            self._dirty.pop(next(iter(self._dirty)))
        if not self._write_scheduled and self.redis.up:
            self._write_scheduled = True
            writing = self._spawn(self._write())
            self._writing.add(writing)
            writing.add_done_callback(self._writing.discard)

    async def _write(self) -> None:
        await asyncio.sleep(0)  # what the rest of this turn of the loop changes goes in the same pipeline
        self._write_scheduled = False
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        records = list(dirty.values())

        async def write() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            for record in records:
                primary = record.keys[0]
                key = self.redis.key("session", primary)
                mapping: dict[Any, str] = {
                    "s": record.session_id,
                    "e": record.edge_host or "",
                    "l": record.location or "",
                    "t": record.tnt_id or "",
                    "p": primary,
                    **{f"k:{k}": "1" for k in record.keys},
                }
                pipe.hset(key, mapping=mapping)
                pipe.pexpire(key, self.ttl_ms)
                for alias in record.keys:
                    pipe.set(self.redis.key("alias", alias), primary, px=self.ttl_ms)
            await pipe.execute()

        try:
            await self.redis.run(write)
        except Unavailable:
            for record in records:  # written once Redis is back
                self._dirty.setdefault(id(record), record)
            return
        for record in records:
            if isinstance(record, SharedRecord):
                record.stored = snapshot(record)

    async def published(self) -> None:
        """Wait until the changes made so far are written to Redis (or found it down): every write in
        flight, since an earlier pipeline may hold this request's change and finish after a later one."""
        if self._writing:
            await asyncio.wait(set(self._writing))

    async def close(self, within_s: float = 1.0) -> None:
        """Write what changed (a moment at most), then stop the reads and writes still going."""
        if self._dirty and self.redis.up:
            self._write_scheduled = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._write(), within_s)
        await self._background.cancel()

    async def catch_up(self) -> None:
        """Redis is back: write what changed while it was away."""
        if self._dirty and not self._write_scheduled:
            self._write_scheduled = True
            await self._write()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        return self._background.spawn(coroutine)
