"""The emulator's clock: wall time plus an offset that tests advance.

Token expiry, rate-limit windows and the progress of AEP jobs all read this clock, so a test can make a
day pass (or a job finish) in one control call instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self.offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees them."""
        return self._source() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0
