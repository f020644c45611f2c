"""Call budgets for upstream APIs that allow N calls a minute (Target Admin and bulk profile: 50).

A sliding window: never more than N calls in any 60 seconds, because upstream counts that way and
answers 503 beyond. Upstream counts a call when it arrives, a moment after it leaves here, so a slot is
held a little longer than the window. Callers over the budget take the next free slot in arrival order
and wait for it, up to a bound; past it they get 429 at once, with the Retry-After at which a slot frees.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from proxy.failures import BudgetExhausted

WINDOW_S = 60.0
# How much later than it leaves here a call may reach upstream, and still count in upstream's window.
ARRIVAL_MARGIN_S = 1.0
HELD_S = WINDOW_S + ARRIVAL_MARGIN_S


class CallBudget:
    def __init__(self, per_minute: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.max_wait_s = max_wait_s
        self.clock = clock
        # When each call of the window is (or, for callers waiting their turn, will be) made; in order.
        self._calls: deque[float] = deque()
        self.rejected = 0
        self.waited = 0

    def _prune(self, now: float) -> None:
        while self._calls and now - self._calls[0] >= HELD_S:
            self._calls.popleft()

    def _wait_for(self, calls: int, now: float) -> float:
        """Seconds until ``calls`` more fit in the window."""
        overflow = len(self._calls) + calls - self.per_minute
        if overflow <= 0:
            return 0.0
        return max(0.0, self._calls[overflow - 1] + HELD_S - now)

    async def spend(self, calls: int = 1) -> None:
        """Take ``calls`` slots (a Target batch request counts each of its operations).

        A request of more calls than a minute allows (a batch of up to 256 operations) is not refused: it
        goes when the window is free, and its calls are paid over the next minutes, a minute's worth at a
        time, so the calls after it wait until it is paid."""
        now = self.clock()
        self._prune(now)
        if calls > self.per_minute:
            # Until the window is free; then a minute's worth of its calls in each of the next windows.
            wait = max(0.0, self._calls[-1] + HELD_S - now) if self._calls else 0.0
            slots = [now + wait + (n // self.per_minute) * HELD_S for n in range(calls)]
            too_many = f"; this request makes {calls}"
        else:
            wait = self._wait_for(calls, now)
            slots = [now + wait] * calls
            too_many = ""
        if wait > self.max_wait_s:
            self.rejected += 1
            retry = math.ceil(wait)
            raise BudgetExhausted(
                f"upstream allows {self.per_minute} calls a minute{too_many}: try again in {retry} s", retry
            )
        # The slots are taken at once, first come first served: whoever comes next queues behind them.
        self._calls.extend(slots)
        if wait > 0:
            self.waited += 1
            await asyncio.sleep(wait)
