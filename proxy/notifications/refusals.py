"""What notifications the edge refuses may cost upstream.

One bad token or timestamp makes the edge refuse (400) a whole call, good notifications and all, so a
refused batch is narrowed down to the bad one: at once when the edge's answer names it
(``notifications[N]`` in its ``field`` or message: that one is dead-lettered and the rest sent again),
else by halving the batch. Every call spent narrowing is paid from two moving-window budgets, one per
visitor and one for the gateway process: once either is spent, a refused batch goes to the dead-letter
file whole, in one write, without further calls. So notifications that upstream refuses cost a client at
most ``per_visitor`` extra calls a visitor a minute, and all clients together ``per_minute``; the default
per visitor is enough to find one bad notification in a batch of 50 by halving.

Both notification pipelines (the local log and the Redis stream) narrow with this one policy, on the
ids of the notifications they sent, in the order they sent them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


@dataclass(slots=True)
class Narrowed:
    """What to do with a refused batch: dead-letter ``dead`` (with ``reason``), send each of ``resend``."""

    dead: list[str]
    resend: list[list[str]]
    reason: str


@dataclass(slots=True)
class RefusalCounters:
    calls: int = 0  # upstream calls spent narrowing refused batches
    unnarrowed: int = 0  # refused notifications dead-lettered whole: a budget was spent
    isolated: int = 0  # refused notifications found and dead-lettered alone


class RefusalPolicy:
    def __init__(self, per_visitor: int, per_minute: int) -> None:
        """Budgets in calls a minute; 0 spends no call on narrowing (every refused batch is dead-lettered)."""
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_visitor = RateLimitItemPerMinute(per_visitor) if per_visitor else None
        self._per_minute = RateLimitItemPerMinute(per_minute) if per_minute else None
        self._paying = asyncio.Lock()
        self.counters = RefusalCounters()

    async def narrow(self, sent: Sequence[str], reason: str, named: int | None, visitor: str) -> Narrowed:
        """``sent``: the ids of the refused call's notifications, in its order; ``reason`` and ``named``: the
        edge's reason and the index of the notification it names, if any (``policy.settle``); ``visitor``:
        whose notifications they are (client and visitor id)."""
        if len(sent) == 1:
            self.counters.isolated += 1
            return Narrowed(list(sent), [], reason)
        if named is not None and named >= len(sent):
            named = None
        calls = 1 if named is not None else 2
        if not await self._afford(visitor, calls):
            self.counters.unnarrowed += len(sent)
            spent = f"{reason} (sent {len(sent)} together; the budget for narrowing refused notifications is spent)"
            return Narrowed(list(sent), [], spent)
        self.counters.calls += calls
        if named is not None:
            self.counters.isolated += 1
            return Narrowed([sent[named]], [[*sent[:named], *sent[named + 1 :]]], reason)
        half = len(sent) // 2
        return Narrowed([], [list(sent[:half]), list(sent[half:])], reason)

    async def _afford(self, visitor: str, calls: int) -> bool:
        if self._per_visitor is None or self._per_minute is None:
            return False
        budgets = ((self._per_visitor, ("visitor", visitor)), (self._per_minute, ("gateway",)))
        async with self._paying:  # batches of other visitors settle at the same time: test and take as one
            for item, key in budgets:
                if not await self._limiter.test(item, *key, cost=calls):
                    return False
            for item, key in budgets:
                await self._limiter.hit(item, *key, cost=calls)
        return True
