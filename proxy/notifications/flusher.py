"""Sending waiting notifications upstream from the local log: per visitor and session, about 50 a call,
when a batch is full or its oldest has waited long enough; again and again until the edge acknowledges
each id. Sending a batch and settling it by the answer is ``sender``'s, which the Redis stream's flusher
shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from proxy.notifications.model import Group, Pending
from proxy.notifications.policy import Backoff
from proxy.notifications.queue import NotificationQueue
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.sender import BatchSender
from proxy.upstream import Upstream

logger = logging.getLogger("proxy.notifications")
CONCURRENT_GROUPS = 16
RESCAN_S = 60.0


class Flusher(BatchSender[Pending]):
    def __init__(
        self,
        queue: NotificationQueue,
        upstream: Upstream,
        refusals: RefusalPolicy,
        backoff: Backoff,
        *,
        max_delay_s: float,
        tick_s: float = 0.5,
        lease_s: float = 60.0,
    ) -> None:
        super().__init__(queue.store, queue.counters, upstream, refusals, backoff)
        self.queue = queue
        self.max_delay_s = max_delay_s  # how long a partial batch may wait
        self.tick_s = tick_s
        self.lease_s = lease_s
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._started_at = 0.0

    def start(self) -> None:
        self._stopping.clear()
        self._started_at = self.store.clock()
        self._task = asyncio.create_task(self._run(), name="notification-flusher")

    async def stop(self, grace_s: float) -> int:
        """Stop the loop (letting the calls in flight finish), then send everything still waiting, all
        within the grace period. Returns how many notifications are left (they stay in the store for the
        next start)."""
        deadline = time.monotonic() + grace_s
        if self._task is not None:
            self._stopping.set()
            with contextlib.suppress(TimeoutError):
                # Past the grace, the calls still out are cancelled and their rows given back.
                await asyncio.wait_for(self._task, grace_s)
            self._task = None
        return await self.drain(deadline - time.monotonic())

    async def drain(self, within_s: float) -> int:
        deadline = time.monotonic() + within_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                sent = await asyncio.wait_for(self.flush(max_delay_s=0.0), left)
            except TimeoutError:
                break
            if self.store.depth() == 0:
                return 0
            if not sent:  # what is left waits for a retry time or another holder's lease
                await asyncio.sleep(max(0.0, min(self.tick_s, deadline - time.monotonic())))
        return self.store.depth()

    async def _run(self) -> None:
        rescanned = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() - rescanned > RESCAN_S:
                # What worker processes that are gone left waiting; and old segments of the log.
                self.store.adopt()
                self.store.tidy()
                rescanned = time.monotonic()
            # The backlog of an earlier run is due at once, whatever its age.
            max_delay_s = min(self.max_delay_s, self.store.clock() - self._started_at)
            try:
                sent = await self.flush(max_delay_s=max_delay_s)
            except Exception:
                logger.exception("notification flush failed; trying again")
                sent = 0
            if sent >= CONCURRENT_GROUPS:  # a full pass: more groups are due, go on once requests had a turn
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick_s)

    async def flush(self, max_delay_s: float) -> int:
        """One pass over the due groups; returns how many groups were sent."""
        groups = self.store.due_groups(self.queue.batch_size, max_delay_s, limit=CONCURRENT_GROUPS)
        if not groups:
            return 0
        await asyncio.gather(*(self._send_group(group) for group in groups))
        return len(groups)

    async def _send_group(self, group: Group) -> None:
        pending = self.store.claim(group, self.queue.batch_size, self.lease_s)
        if not pending:
            return
        try:
            await self.deliver(pending)
        except asyncio.CancelledError:
            # Stopped mid-call: the rows not settled yet are free again now, not when the lease runs out.
            self.store.release(pending)
            raise

    # --- the items of the local log: its rows ----------------------------------------------------------

    def notification(self, item: Pending) -> Pending:
        return item

    async def acknowledged(self, items: list[Pending]) -> None:
        self.store.ack(items)

    def later(self, items: list[Pending], delay_s: float) -> None:
        self.store.retry(items, delay_s)
