"""Flushing the Redis stream of notifications (``proxy.notifications.stream``).

``StreamFlusher``, one per gateway, all in one consumer group: each reads new entries
(XREADGROUP), holds them per visitor and session, and sends a visitor's batch (about 50) when it is full
or its oldest has waited ``notification_max_delay_ms``, settled by the policy both pipelines share
(``proxy.notifications.policy``: retries, backoff, dead letters; ``refusals`` on 400). An entry is
acknowledged in the group and deleted (XACK + XDEL) only once the edge acknowledged its notification id;
one it refused for good (a 4xx) once it is in the gateway's dead-letter file. Entries a gateway holds are
kept from going idle (re-claimed by their holder); entries idle longer than ``redis_claim_idle_ms`` belong
to a gateway that is gone and are claimed by the others (XAUTOCLAIM). A notification sent twice (its
gateway died after the edge acknowledged it, before XACK; or an XADD that timed out yet was carried out,
then spooled locally too) carries the same id, which the edge counts once; two entries of one id held
together go in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from redis.exceptions import ResponseError

from proxy.notifications.model import Group, Pending
from proxy.notifications.policy import Backoff
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.sender import BatchSender
from proxy.notifications.stream import GROUP_NAME, SEPARATOR, SharedNotificationQueue
from proxy.shared.connection import Unavailable
from proxy.upstream import Upstream

logger = logging.getLogger("proxy.notifications")
CONCURRENT_CALLS = 16
READ_COUNT = 1000
TOUCH_CHUNK = 1000
# Consumers of the group with nothing pending, idle this long, are gateways gone: removed from the group.
FORGET_CONSUMER_MS = 3_600_000
Entry = tuple[bytes, Pending]  # a stream entry's id, and the notification it holds


@dataclass(slots=True)
class Held:
    """A visitor's notifications this gateway holds from the stream, in order, with their entry ids."""

    items: dict[bytes, Pending] = field(default_factory=dict)
    not_before: float = 0.0
    busy: bool = False


class StreamFlusher(BatchSender[Entry]):
    def __init__(
        self,
        queue: SharedNotificationQueue,
        upstream: Upstream,
        refusals: RefusalPolicy,
        backoff: Backoff,
        *,
        max_delay_s: float,
        claim_idle_s: float,
        max_held: int,
        tick_s: float = 0.05,
    ) -> None:
        super().__init__(queue.store, queue.counters, upstream, refusals, backoff)
        self.queue = queue
        self.max_delay_s = max_delay_s  # how long a partial batch may wait
        self.tick_s = tick_s
        self.redis = queue.redis
        self.stream = queue.stream
        self.claim_idle_s = claim_idle_s
        self.max_held = max_held
        self.consumer = self.redis.instance
        self._held: dict[Group, Held] = {}
        self._held_ids: set[bytes] = set()
        self._unacked: list[bytes] = []  # acknowledged by the edge, XACK not through yet
        self._calls: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._group_ready = False
        self._reread_own = False
        self._maintained = float("-inf")
        self.claimed = 0
        self.duplicates_possible = 0
        self.redis.when_up(self._redis_back)

    @property
    def held(self) -> int:
        return len(self._held_ids)

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="stream-flusher")

    async def stop(self, grace_s: float) -> int:
        """Stop reading; send what this gateway holds within the grace. What is left stays pending in the
        stream, for the other gateways (or the next start) to claim. Returns how many are left here."""
        deadline = time.monotonic() + grace_s
        if self._task is not None:
            self._stopping.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, max(0.0, grace_s))
            self._task = None
        while self._held_ids and time.monotonic() < deadline:
            self._send_due(now=time.time(), everything=True)
            if self._calls:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.wait(set(self._calls)), max(0.01, deadline - time.monotonic()))
            elif self._held_ids:
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        for call in list(self._calls):
            call.cancel()
        await self._ack_left()
        return self.held

    async def _redis_back(self) -> None:
        self._group_ready = False
        # A read whose answer was lost with the connection left entries on this consumer: take them back.
        self._reread_own = True

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.client.xgroup_create(self.stream, GROUP_NAME, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # --- the loop --------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            more = False
            if self.redis.up:
                try:
                    more = await self.redis.run(self._exchange)
                except Unavailable as exc:
                    if isinstance(exc.__cause__, ResponseError):  # Redis up, but it refused a command
                        if "NOGROUP" in str(exc.__cause__):  # the stream or the group was deleted
                            self._group_ready = False
                        else:
                            logger.warning("notification stream: %s", exc)
                except Exception:
                    logger.exception("notification stream flush failed; trying again")
            try:
                self._send_due(now=time.time())
            except Exception:
                logger.exception("notification stream flush failed; trying again")
            if more:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick_s)

    async def _exchange(self) -> bool:
        """Talk to Redis once: acknowledgements left over, maintenance now and then, new entries.
        Returns True when there was more to read."""
        await self._ensure_group()
        if self._unacked:
            await self._ack_left()
        if self._reread_own:
            await self._take_own()
        now = time.monotonic()
        if now - self._maintained >= self.claim_idle_s / 3:
            self._maintained = now
            await self._maintain()
        # Settled entries whose XACK has not gone through count too: memory stays bounded if it keeps failing.
        room = self.max_held - len(self._held_ids) - len(self._unacked)
        if room <= 0:
            return False
        count = min(READ_COUNT, room)
        answer: Any = await self.redis.client.xreadgroup(GROUP_NAME, self.consumer, {self.stream: ">"}, count=count)
        read = 0
        for _, entries in answer or []:
            read += len(entries)
            self._take(entries)
        return read >= count

    async def _take_own(self) -> None:
        """The entries delivered to this consumer and not acknowledged yet (its history in the group)."""
        after: Any = "0"
        while True:
            answer: Any = await self.redis.client.xreadgroup(
                GROUP_NAME, self.consumer, {self.stream: after}, count=READ_COUNT
            )
            entries = [entry for _, found in answer or [] for entry in found]
            if not entries:
                break
            self._take(entries)
            after = entries[-1][0]
        self._reread_own = False

    async def _maintain(self) -> None:
        """Keep what this gateway holds from going idle, claim what gone gateways left, count the stream."""
        client = self.redis.client
        min_idle_ms = int(self.claim_idle_s * 1000)
        held: list[Any] = list(self._held_ids)
        for start in range(0, len(held), TOUCH_CHUNK):
            chunk = held[start : start + TOUCH_CHUNK]
            await client.xclaim(self.stream, GROUP_NAME, self.consumer, min_idle_ms // 2, chunk, justid=True)
        cursor: Any = "0-0"
        while (room := self.max_held - len(self._held_ids) - len(self._unacked)) > 0:
            claimed: Any = await client.xautoclaim(
                self.stream, GROUP_NAME, self.consumer, min_idle_ms, cursor, count=min(READ_COUNT, room)
            )
            cursor, entries, *_ = claimed
            taken = self._take(entries)
            self.claimed += taken
            if taken:
                logger.info("claimed %d notification(s) left by a gateway that is gone", taken)
            if cursor in (b"0-0", "0-0") or not entries:
                break
        self.queue.stream_depth = int(await client.xlen(self.stream))
        consumers = await client.xinfo_consumers(self.stream, GROUP_NAME)
        for consumer in consumers:
            name = consumer.get("name")
            name = name.decode() if isinstance(name, bytes) else name
            if (
                isinstance(name, str)
                and name != self.consumer
                and not consumer.get("pending")
                and consumer.get("idle", 0) > FORGET_CONSUMER_MS
            ):
                await client.xgroup_delconsumer(self.stream, GROUP_NAME, name)

    def _take(self, entries: Sequence[Any]) -> int:
        taken = 0
        for entry in entries:
            if not entry:
                continue
            stream_id, fields = entry
            if not fields:  # deleted meanwhile (nil, or {} through redis-py), yet pending here: settle it
                self._unacked.append(stream_id)
                continue
            if stream_id in self._held_ids:
                continue
            try:
                client, visitor, session = fields[b"g"].decode().split(SEPARATOR)
                edge = fields.get(b"e", b"").decode() or None
                created = float(fields.get(b"t", b"0"))
                pending = Pending(
                    -1, fields[b"n"].decode(), client, visitor, session, edge, fields[b"i"], fields[b"p"], created, 0
                )
            except (KeyError, ValueError, UnicodeDecodeError):
                logger.warning("unreadable notification entry %r in the stream; dropped", stream_id)
                self._unacked.append(stream_id)
                continue
            held = self._held.get(pending.group)
            if held is None:
                held = self._held[pending.group] = Held()
            held.items[stream_id] = pending
            self._held_ids.add(stream_id)
            taken += 1
        return taken

    # --- sending ---------------------------------------------------------------------------------------

    def _send_due(self, now: float, everything: bool = False) -> None:
        if not self._held:
            return
        batch_size = self.queue.batch_size
        old_enough = now - (0.0 if everything else self.max_delay_s)
        for group, held in list(self._held.items()):
            if len(self._calls) >= CONCURRENT_CALLS:
                return
            if held.busy or held.not_before > now or not held.items:
                continue
            oldest = next(iter(held.items.values()))
            if len(held.items) < batch_size and oldest.created > old_enough:
                continue
            chosen = list(held.items.items())[:batch_size]
            held.busy = True
            task = asyncio.get_running_loop().create_task(self._call(group, chosen))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call(self, group: Group, chosen: list[tuple[bytes, Pending]]) -> None:
        try:
            await self.deliver(chosen)
        finally:
            held = self._held.get(group)
            if held is not None:
                held.busy = False
                if not held.items:
                    del self._held[group]

    # --- the items of the stream: (entry id, notification) ------------------------------------------------

    def notification(self, item: Entry) -> Pending:
        return item[1]

    async def acknowledged(self, items: list[Entry]) -> None:
        """The edge acknowledged these: settle them in the stream (or as soon as Redis answers)."""
        if not items:
            return
        ids = [sid for sid, _ in items]
        self._forget(items[0][1].group, ids)
        try:
            await self.redis.run(lambda: self._ack(ids))
        except Unavailable:
            self._unacked.extend(ids)

    def dead_lettered(self, items: list[Entry]) -> None:
        if items:
            self._forget(items[0][1].group, [sid for sid, _ in items])
            self._unacked.extend(sid for sid, _ in items)

    def later(self, items: list[Entry], delay_s: float) -> None:
        for _, pending in items:
            pending.attempts += 1
        held = self._held.get(items[0][1].group)
        if held is not None:
            held.not_before = time.time() + delay_s

    def _forget(self, group: Group, ids: Sequence[bytes]) -> None:
        held = self._held.get(group)
        for sid in ids:
            self._held_ids.discard(sid)
            if held is not None:
                held.items.pop(sid, None)

    async def _ack(self, ids: Sequence[bytes]) -> None:
        pipe = self.redis.client.pipeline(transaction=False)
        pipe.xack(self.stream, GROUP_NAME, *ids)
        pipe.xdel(self.stream, *ids)
        await pipe.execute()
        self.queue.stream_depth = max(0, self.queue.stream_depth - len(ids))

    async def _ack_left(self) -> None:
        left, self._unacked = self._unacked, []
        if not left:
            return
        try:
            for start in range(0, len(left), TOUCH_CHUNK):
                await self.redis.run(partial(self._ack, left[start : start + TOUCH_CHUNK]))
        except Unavailable:
            self._unacked[:0] = left

    def document(self) -> dict[str, Any]:
        return {"held": self.held, "claimed": self.claimed, "unacknowledgedInStream": len(self._unacked)}
