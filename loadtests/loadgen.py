"""A small HTTP/1.1 client on raw asyncio sockets, for what wrk 4.1 cannot do: send an exact list of
requests (warm-ups, visitor sessions) and send requests at a fixed rate.

The fixed rate is open-loop: request ``i`` is due at ``start + i / rate`` whether or not earlier answers
have come back, so a stalled server cannot hold back the requests that would have met the stall
(coordinated omission). When every connection is busy the due requests wait in the client, and their
latency counts from the moment they were due. Time the client itself loses is not the server's: when a
request is sent late although a connection was free at its due time, its latency counts from when it
was actually sent. That lag is reported beside the figures, so a generator that could not keep up is
visible. The event loop's timers have whole milliseconds, so within 2 ms of the next due time the
generator polls on every turn of the loop instead (it keeps its core busy while it runs).

Responses must carry Content-Length (uvicorn sends it for every response these benchmarks read).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

HEADER_END = b"\r\n\r\n"
OnResponse = Callable[["Connection", int, bytes, float], None]


class ConnectionLost(Exception):
    """The server closed a connection while the client still had work for it."""


def post(url: str, path: str, body: bytes) -> bytes:
    """A raw keep-alive POST of a JSON body."""
    host = urlsplit(url).netloc
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Connection(asyncio.Protocol):
    """One request in flight at a time; ``on_response(self, status, body, at)`` when it is complete."""

    def __init__(self, on_response: OnResponse, finished: asyncio.Future[None]) -> None:
        self.on_response = on_response
        self.finished = finished  # failed if the server closes the connection before the run is over
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0  # when the request in flight counts from
        self.free_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(ConnectionLost(f"the server closed a connection: {exc}"))

    def send(self, raw: bytes) -> None:
        assert self.transport is not None
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        self.buffer += data
        end = self.buffer.find(HEADER_END)
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            if not self.finished.done():
                self.finished.set_exception(RuntimeError(f"response without content-length: {head[:200]!r}"))
            return
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self.on_response(self, int(head[9:12]), body, at)


async def connect(url: str, count: int, on_response: OnResponse, finished: asyncio.Future[None]) -> list[Connection]:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(count):
        _, protocol = await loop.create_connection(
            lambda: Connection(on_response, finished), parts.hostname, parts.port or 80
        )
        connections.append(protocol)
    return connections


def close(connections: Sequence[Connection]) -> None:
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()


async def send_all(url: str, requests: Sequence[bytes], concurrency: int = 32) -> list[tuple[int, bytes]]:
    """Send every request, ``concurrency`` at a time, in order of the list; answers in the same order."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    slot: dict[Connection, int] = {}
    following = iter(range(len(requests)))
    finished = asyncio.get_running_loop().create_future()
    left = len(requests)

    def next_on(connection: Connection) -> None:
        index = next(following, None)
        if index is not None:
            slot[connection] = index
            connection.send(requests[index])

    def done(connection: Connection, status: int, body: bytes, at: float) -> None:
        nonlocal left
        answers[slot[connection]] = (status, body)
        left -= 1
        if left == 0 and not finished.done():
            finished.set_result(None)
        next_on(connection)

    if not requests:
        return answers
    connections = await connect(url, min(concurrency, len(requests)), done, finished)
    try:
        for connection in connections:
            next_on(connection)
        await asyncio.wait_for(finished, timeout=max(60.0, len(requests) / 200))
    finally:
        close(connections)
    return answers


@dataclass
class RateResult:
    rate: float
    seconds: float
    sent: int
    statuses: dict[int, int]
    latencies_ms: list[float] = field(repr=False)
    lag_ms: list[float] = field(repr=False)

    def percentile(self, values: list[float], pct: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0

    def summary(self) -> dict[str, float | int | dict[int, int]]:
        figures: dict[str, float | int | dict[int, int]] = {
            "rate": round(self.rate),
            "achieved_rps": round(self.sent / self.seconds) if self.seconds else 0,
            "sent": self.sent,
            "statuses": self.statuses,
        }
        for pct in (50, 90, 99, 99.9):
            figures[f"p{pct:g}_ms"] = round(self.percentile(self.latencies_ms, pct), 3)
        figures["max_ms"] = round(max(self.latencies_ms, default=0.0), 3)
        figures["generator_lag_p50_ms"] = round(self.percentile(self.lag_ms, 50), 3)
        figures["generator_lag_p99_ms"] = round(self.percentile(self.lag_ms, 99), 3)
        return figures


async def fixed_rate(
    url: str, make: Callable[[int], bytes], *, rate: float, seconds: float, connections: int = 32
) -> RateResult:
    """Send ``rate * seconds`` requests, ``make(i)`` due at ``start + i / rate`` (see the module doc)."""
    loop = asyncio.get_running_loop()
    total = max(1, round(rate * seconds))
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter[int] = Counter()
    free: deque[Connection] = deque()
    finished = loop.create_future()
    issued = 0
    timer: asyncio.Handle | None = None
    start = 0.0

    def on_timer() -> None:
        nonlocal timer
        timer = None
        pump()

    def pump() -> None:
        nonlocal issued, timer
        now = time.perf_counter()
        while free and issued < total:
            due = start + issued / rate
            if due > now:
                break
            connection = free.popleft()  # the one free the longest
            # Late although a connection was free when the request fell due: the client's lag.
            lag = now - max(due, connection.free_since)
            lags.append(lag * 1000)
            connection.due = due + lag
            connection.send(make(issued))
            issued += 1
        if issued < total and free and timer is None:
            wait = start + issued / rate - now
            # The loop's timers have whole milliseconds: closer than 2 ms, poll on every turn instead.
            timer = loop.call_later(wait - 0.001, on_timer) if wait > 0.002 else loop.call_soon(on_timer)

    def done(connection: Connection, status: int, body: bytes, at: float) -> None:
        latencies.append((at - connection.due) * 1000)
        statuses[status] += 1
        connection.free_since = at
        free.append(connection)
        if len(latencies) == total and not finished.done():
            finished.set_result(None)
        else:
            pump()

    opened = await connect(url, connections, done, finished)
    start = time.perf_counter() + 0.01
    for connection in opened:
        connection.free_since = start
        free.append(connection)
    try:
        pump()
        await asyncio.wait_for(finished, timeout=seconds * 3 + 30)
    finally:
        close(opened)
    elapsed = max(time.perf_counter() - start, 1e-9)
    return RateResult(rate, elapsed, total, dict(statuses), latencies, lags)
