"""Helpers for any test: polling, and many requests at once over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(interval)


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    body: dict[str, Any]
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


async def _post_all(base_url: str, calls: Sequence[Call], concurrency: int) -> list[Answer]:
    answers: list[Answer | None] = [None] * len(calls)
    pending = iter(range(len(calls)))
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for index in pending:
                call = calls[index]
                async with session.post(
                    call.path, json=call.body, params=call.params, headers=call.headers
                ) as response:
                    raw = await response.read()
                    body = await response.json(content_type=None) if raw else None
                    answers[index] = Answer(response.status, body, dict(response.headers))

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(calls)))))
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def post_concurrently(base_url: str, calls: Sequence[Call], concurrency: int = 50) -> list[Answer]:
    """POST every call with ``concurrency`` requests in flight at once; answers in call order."""
    return asyncio.run(_post_all(base_url, calls, concurrency))
