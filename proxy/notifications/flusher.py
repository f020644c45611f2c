"""Sending waiting notifications upstream from the local log: per visitor and session, about 50 a call,
when a batch is full or its oldest has waited long enough; again and again until the edge acknowledges
each id. What an answer means, and when to try again, is ``policy``'s; narrowing a refused batch,
``refusals``'.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from proxy.notifications import policy
from proxy.notifications.model import Group, Pending
from proxy.notifications.policy import Backoff, Verdict
from proxy.notifications.queue import NotificationQueue
from proxy.notifications.refusals import RefusalPolicy
from proxy.upstream import Upstream, UpstreamResponse, UpstreamUnavailable

logger = logging.getLogger("proxy.notifications")
CONCURRENT_GROUPS = 16
RESCAN_S = 60.0


class Flusher:
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
        self.queue = queue
        self.store = queue.store
        self.counters = queue.counters
        self.upstream = upstream
        self.refusals = refusals
        self.max_delay_s = max_delay_s
        self.tick_s = tick_s
        self.backoff = backoff
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

    async def deliver(self, pending: Sequence[Pending]) -> None:
        try:
            response = await policy.send(self.upstream, pending)
        except UpstreamUnavailable as exc:
            self._retry(pending, None, exc.message)
            return
        await self._settle(pending, response)

    async def _settle(self, pending: Sequence[Pending], response: UpstreamResponse) -> None:
        settled = policy.settle(response)
        if settled.verdict is Verdict.ACKNOWLEDGED:
            done = [p for p in pending if p.id in settled.acknowledged]
            self.store.ack(done)
            self.counters.flushed += len(done)
            missing = [p for p in pending if p.id not in settled.acknowledged]
            if missing:
                self._retry(missing, None, "not acknowledged by the edge")
        elif settled.verdict is Verdict.REFUSED:
            first = pending[0]
            narrowed = await self.refusals.narrow(
                [p.id for p in pending], settled.reason, settled.named, f"{first.client}:{first.visitor}"
            )
            by_id = {p.id: p for p in pending}
            if narrowed.dead:
                self._dead_letter([by_id[i] for i in narrowed.dead], narrowed.reason, response.status)
            for piece in narrowed.resend:
                await self.deliver([by_id[i] for i in piece])
        elif settled.verdict is Verdict.RETRY:
            self._retry(pending, settled.retry_after_s, settled.reason)
        else:
            self._dead_letter(pending, settled.reason, response.status)

    def _dead_letter(self, pending: Sequence[Pending], reason: str, status: int | None) -> None:
        logger.warning("edge refused %d notification(s) with %s: %s", len(pending), status, reason)
        self.store.dead_letter(pending, reason, status)
        self.counters.dead_lettered += len(pending)

    def _retry(self, pending: Sequence[Pending], retry_after_s: float | None, reason: str) -> None:
        self.counters.failed += len(pending)
        exhausted = [p for p in pending if self.backoff.gives_up(p.attempts + 1)]
        if exhausted:
            self.store.dead_letter(exhausted, f"gave up after {self.backoff.max_attempts} attempts: {reason}", None)
            self.counters.dead_lettered += len(exhausted)
        again = [p for p in pending if not self.backoff.gives_up(p.attempts + 1)]
        if not again:
            return
        self.store.retry(again, self.backoff.delay(max(p.attempts for p in again) + 1, retry_after_s))
        self.counters.retried += len(again)
