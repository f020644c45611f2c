"""Identical concurrent misses made once (``proxy.content.coalesce.SingleFlight``), in this process."""

from __future__ import annotations

import asyncio

import pytest

from proxy.content.coalesce import SingleFlight


def test_callers_that_come_meanwhile_wait_for_the_one_call() -> None:
    async def scenario() -> tuple[int, list[bool], int]:
        flight, calls = SingleFlight(), 0
        release = asyncio.Event()

        async def call() -> str:
            nonlocal calls
            calls += 1
            await release.wait()
            return "content"

        first = asyncio.create_task(flight.run("visitor-1", call))
        await asyncio.sleep(0)
        assert flight.in_flight("visitor-1") is not None
        waiters = [asyncio.create_task(flight.wait("visitor-1")) for _ in range(5)]
        await asyncio.sleep(0)
        release.set()
        assert await first == "content"
        return calls, list(await asyncio.gather(*waiters)), flight.coalesced

    calls, waited, coalesced = asyncio.run(scenario())
    assert (calls, waited, coalesced) == (1, [True] * 5, 5)


def test_a_failed_call_fails_its_caller_and_tells_the_waiters() -> None:
    async def scenario() -> tuple[bool, bool]:
        flight = SingleFlight()
        started = asyncio.Event()

        async def call() -> str:
            started.set()
            await asyncio.sleep(0.01)
            raise RuntimeError("upstream failed")

        first = asyncio.create_task(flight.run("k", call))
        await started.wait()
        waiter = asyncio.create_task(flight.wait("k"))
        with pytest.raises(RuntimeError):
            await first
        return await waiter, flight.in_flight("k") is None

    assert asyncio.run(scenario()) == (False, True)


def test_waiting_with_nothing_in_flight_returns_at_once() -> None:
    assert asyncio.run(SingleFlight().wait("nothing")) is False


def test_keys_are_apart() -> None:
    async def scenario() -> list[str]:
        flight = SingleFlight()

        async def call(value: str) -> str:
            await asyncio.sleep(0)
            return value

        return list(await asyncio.gather(flight.run("a", lambda: call("a")), flight.run("b", lambda: call("b"))))

    assert asyncio.run(scenario()) == ["a", "b"]
