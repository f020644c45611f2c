"""Hostile clients beside the soak's load, on their own connections, all on loopback:

- made-up notifications: every ``every_s`` a Delivery API request, without a key, from a visitor never seen
  before, carrying ``per_request`` display notifications whose event tokens nobody issued. The gateway
  acknowledges them at once; the edge refuses them; the gateway may spend only its refusal budget finding
  them, and must dead-letter each one once (and nothing else).
- lingering connections: every ``every_s`` a connection that asks once (``GET /healthz``), then sends a
  CRLF every second, which starts no request. The gateway must close it within its
  ``header_timeout_seconds`` of the answer (and the sweep's interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

MADE_UP_PREFIX = "made-up-"
HEAD_SLACK_S = 2.0  # the deadline sweep's interval and a loaded machine


@dataclass
class HostileTally:
    requests: int = 0
    acknowledged: int = 0  # made-up notifications the gateway acknowledged
    statuses: Counter[int] = field(default_factory=Counter)
    held_s: list[float] = field(default_factory=list)  # how long each lingering connection outlived its answer
    not_closed: int = 0  # lingering connections still open when the soak gave up on them

    def document(self, header_timeout_s: float) -> dict[str, object]:
        return {
            "made_up_requests": self.requests,
            "made_up_acknowledged": self.acknowledged,
            "made_up_statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "lingering_connections": len(self.held_s) + self.not_closed,
            "lingering_held_longest_s": round(max(self.held_s, default=0.0), 2),
            "lingering_held_past_bound": self.held_past(header_timeout_s),
        }

    def held_past(self, header_timeout_s: float) -> int:
        return self.not_closed + sum(1 for held in self.held_s if held > header_timeout_s + HEAD_SLACK_S)


def made_up_request(per_request: int) -> dict[str, object]:
    visitor = f"hostile-{uuid.uuid4().hex}"
    notes = [
        {
            "id": f"{MADE_UP_PREFIX}{visitor}-{i}",
            "type": "display",
            "timestamp": int(time.time() * 1000),
            "tokens": [f"{MADE_UP_PREFIX}token-{uuid.uuid4().hex}"],
        }
        for i in range(per_request)
    ]
    return {"id": {"thirdPartyId": visitor}, "context": {"channel": "web"}, "notifications": notes}


async def made_up_notifications(
    url: str, every_s: float, per_request: int, stop: asyncio.Event, tally: HostileTally
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            try:
                answer = await client.post("/rest/v1/delivery?client=demo", json=made_up_request(per_request))
            except httpx.HTTPError:
                tally.statuses[0] += 1
            else:
                tally.requests += 1
                tally.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    tally.acknowledged += len(answer.json().get("notifications") or [])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)


async def linger_once(url: str, header_timeout_s: float, tally: HostileTally) -> None:
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: hostile\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        answered = time.monotonic()
        writer.write(b"\r\n")
        give_up = answered + header_timeout_s + 10 * HEAD_SLACK_S
        while time.monotonic() < give_up:
            try:
                if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                    tally.held_s.append(time.monotonic() - answered)
                    return
            except TimeoutError:
                pass
            except ConnectionError:
                tally.held_s.append(time.monotonic() - answered)
                return
            with contextlib.suppress(ConnectionError):
                writer.write(b"\r\n")  # starts no request: the parser skips it, and waits
        tally.not_closed += 1
    finally:
        writer.close()


async def lingering_connections(
    url: str, every_s: float, header_timeout_s: float, stop: asyncio.Event, tally: HostileTally
) -> None:
    lingering: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        task = asyncio.create_task(linger_once(url, header_timeout_s, tally))
        lingering.add(task)
        task.add_done_callback(lingering.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    await asyncio.gather(*lingering)  # each ends by itself, closed or given up on
