"""Sending one visitor's batch of notifications and settling it by the edge's answer: what the local log's
flusher and the Redis stream's flusher share, over the items each keeps (rows of the log, stream entries).

The answer is read once by ``policy.settle``: acknowledged ids are settled and the others tried again; a
refused batch is narrowed by ``refusals`` (what it names dead-lettered, the rest sent again); a retryable
answer or no answer waits its backoff, until the attempts are spent; anything else is dead-lettered.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from proxy.notifications import policy
from proxy.notifications.model import Pending
from proxy.notifications.policy import Backoff, Verdict
from proxy.notifications.queue import Counters
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.upstream import Upstream, UpstreamResponse, UpstreamUnavailable

logger = logging.getLogger("proxy.notifications")
Item = TypeVar("Item")


class BatchSender(ABC, Generic[Item]):
    def __init__(
        self,
        store: NotificationStore,
        counters: Counters,
        upstream: Upstream,
        refusals: RefusalPolicy,
        backoff: Backoff,
    ) -> None:
        self.store = store  # with the dead-letter file, whichever backend holds the items
        self.counters = counters
        self.upstream = upstream
        self.refusals = refusals
        self.backoff = backoff

    # --- what a backend says about its items ------------------------------------------------------------

    @abstractmethod
    def notification(self, item: Item) -> Pending:
        """The notification an item holds."""

    @abstractmethod
    async def acknowledged(self, items: list[Item]) -> None:
        """The edge has these: settle them for good."""

    @abstractmethod
    def later(self, items: list[Item], delay_s: float) -> None:
        """Count a failed attempt; send these again in ``delay_s``."""

    def dead_lettered(self, items: list[Item]) -> None:
        """These are in the dead-letter file now: forget them (the local log does so as it writes it)."""

    # --- sending and settling ---------------------------------------------------------------------------

    async def deliver(self, batch: Sequence[Item]) -> None:
        notes = [self.notification(item) for item in batch]
        # One notification in two items (a stream entry also spooled locally, say) is sent once: the edge's
        # answer settles both.
        ids = [note.id for note in notes]
        pending = notes if len(set(ids)) == len(ids) else list({note.id: note for note in notes}.values())
        try:
            response = await policy.send(self.upstream, pending)
        except UpstreamUnavailable as exc:
            self.retry(batch, None, exc.message)
            return
        await self.settle(batch, ids, response)

    async def settle(self, batch: Sequence[Item], ids: list[str], response: UpstreamResponse) -> None:
        """The batch by the edge's answer; ``ids``: the id of each item's notification."""
        settled = policy.settle(response)

        def among(chosen: set[str] | frozenset[str], inside: bool = True) -> list[Item]:
            return [item for item, i in zip(batch, ids, strict=True) if (i in chosen) is inside]

        if settled.verdict is Verdict.ACKNOWLEDGED:
            done = among(settled.acknowledged)
            await self.acknowledged(done)
            self.counters.flushed += len(done)
            if len(done) < len(batch):
                self.retry(among(settled.acknowledged, inside=False), None, "not acknowledged by the edge")
        elif settled.verdict is Verdict.REFUSED:
            first = self.notification(batch[0])
            visitor = f"{first.client}:{first.visitor}"
            narrowed = await self.refusals.narrow(list(dict.fromkeys(ids)), settled.reason, settled.named, visitor)
            if narrowed.dead:
                self.dead_letter(among(set(narrowed.dead)), narrowed.reason, response.status)
            for piece in narrowed.resend:
                await self.deliver(among(set(piece)))
        elif settled.verdict is Verdict.RETRY:
            self.retry(batch, settled.retry_after_s, settled.reason)
        else:
            self.dead_letter(batch, settled.reason, response.status)

    def dead_letter(self, batch: Sequence[Item], reason: str, status: int | None) -> None:
        if status is not None:
            logger.warning("edge refused %d notification(s) with %d: %s", len(batch), status, reason)
        self.store.dead_letter([self.notification(item) for item in batch], reason, status)
        self.counters.dead_lettered += len(batch)
        self.dead_lettered(list(batch))

    def retry(self, batch: Sequence[Item], retry_after_s: float | None, reason: str) -> None:
        """A failed attempt: what has had its attempts is dead-lettered, the rest waits its backoff."""
        self.counters.failed += len(batch)
        gives_up = [self.backoff.gives_up(self.notification(item).attempts + 1) for item in batch]
        exhausted = [item for item, done in zip(batch, gives_up, strict=True) if done]
        if exhausted:
            self.dead_letter(exhausted, f"gave up after {self.backoff.max_attempts} attempts: {reason}", None)
        again = [item for item, done in zip(batch, gives_up, strict=True) if not done]
        if not again:
            return
        attempts = max(self.notification(item).attempts for item in again) + 1
        self.later(again, self.backoff.delay(attempts, retry_after_s))
        self.counters.retried += len(again)
