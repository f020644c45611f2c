"""Calls a minute per client, as Target's Admin and bulk profile APIs allow (50, then HTTP 503)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable


class SlidingWindow:
    """At most ``rate`` calls per key in any ``window`` seconds: a log of each key's recent call times."""

    def __init__(self, rate: int, clock: Callable[[], float], window: float = 60.0) -> None:
        self.rate = rate
        self.window = window
        self._clock = clock
        self._calls: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable) -> int | None:
        """Record a call; None when allowed, else the whole seconds until one is (for Retry-After)."""
        now = self._clock()
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        if len(calls) >= self.rate:
            return max(1, math.ceil(calls[0] + self.window - now))
        calls.append(now)
        return None
