"""One upstream call for identical concurrent misses: the first caller makes it, the others wait for
it and then read what it put in the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        self._calls: dict[Hashable, asyncio.Future[object]] = {}
        self.coalesced = 0

    def in_flight(self, key: Hashable) -> asyncio.Future[object] | None:
        return self._calls.get(key)

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """Make the call under ``key``; callers that come meanwhile should ``wait`` instead."""
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._calls[key] = done
        try:
            result = await call()
        except BaseException as exc:
            done.set_exception(exc)
            # Waiters see the failure; nobody else needs to retrieve it.
            done.exception()
            raise
        else:
            done.set_result(result)
            return result
        finally:
            del self._calls[key]

    async def wait(self, key: Hashable) -> bool:
        """Wait for the call in flight under ``key``; True when it succeeded."""
        call = self._calls.get(key)
        if call is None:
            return False
        self.coalesced += 1
        try:
            await asyncio.shield(call)
        except Exception:
            return False
        return True
