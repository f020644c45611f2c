"""Displays served by several gateways on one Redis are counted once each by the edge when a gateway is
killed mid-stream (the others claim what it held) and when Redis itself is restarted under load (the
gateways spool to their local logs meanwhile)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import aiohttp
import httpx

from tests.notifications.helpers import DEMO_MBOXES, new_visitor, queue_status, stats, view
from tests.scaleout.conftest import RedisServer, StartGateways
from tests.servers import ServerProcess
from tests.support import wait_for


class SpreadStream:
    """Cache-served views spread round-robin over gateways (as a load balancer would), ``concurrency`` at
    a time, ``total`` in all. A gateway whose connection breaks or is refused is taken out of the rotation;
    the views go on with the others."""

    def __init__(self, urls: Sequence[str], visitors: Sequence[str], total: int, concurrency: int = 12) -> None:
        self.urls = list(urls)
        self.calls = [(visitors[i % len(visitors)], DEMO_MBOXES[(i // len(visitors)) % 7]) for i in range(total)]
        self.concurrency = concurrency
        self.acknowledged = 0
        self.by_gateway = [0] * len(urls)
        self.refused: list[int] = []
        self.broken = 0
        self.dead: set[int] = set()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> SpreadStream:
        self._thread.start()
        return self

    def join(self, timeout: float = 60) -> SpreadStream:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream of views did not end"
        return self

    async def _run(self) -> None:
        calls = iter(enumerate(self.calls))
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def worker() -> None:
                for n, (visitor, mbox) in calls:
                    alive = [i for i in range(len(self.urls)) if i not in self.dead]
                    target = alive[n % len(alive)]
                    try:
                        async with session.post(
                            f"{self.urls[target]}/rest/v1/mbox",
                            params={"client": "demo"},
                            json={"mbox": mbox, "thirdPartyId": visitor},
                        ) as response:
                            await response.read()
                    except (TimeoutError, aiohttp.ClientError):
                        self.broken += 1
                        self.dead.add(target)
                        continue
                    if response.status == 200:
                        self.acknowledged += 1
                        self.by_gateway[target] += 1
                    else:
                        self.refused.append(response.status)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))


def warm(servers: Sequence[ServerProcess], count: int) -> list[str]:
    """``count`` visitors, each after its miss on the first gateway (which prefetched the whole catalog),
    and a view on each other gateway (which brought its content into that gateway's memory)."""
    visitors = [new_visitor() for _ in range(count)]
    with httpx.Client(timeout=10) as client:
        for visitor in visitors:
            for server in servers:
                answer = client.post(
                    f"{server.url}/rest/v1/mbox",
                    params={"client": "demo"},
                    json={"mbox": "home-hero", "thirdPartyId": visitor},
                )
                assert answer.status_code == 200, answer.text
    return visitors


def displays(emulator: httpx.Client) -> dict[str, Any]:
    counted = stats(emulator)
    return {"impressions": counted["impressions"], **counted["notifications"]}


def stream_left(redis_server: RedisServer) -> tuple[int, int]:
    """Entries in the notification stream, and those delivered to a gateway but not acknowledged yet."""
    with redis_server.client() as client:
        length = int(client.xlen("target-proxy:notifications"))
        pending = int(client.xpending("target-proxy:notifications", "flushers")["pending"])
    return length, pending


def test_every_display_is_counted_once_when_a_gateway_is_killed_mid_stream(
    gateways: StartGateways, emulator: httpx.Client, redis_server: RedisServer
) -> None:
    # Partial batches wait 1.5 s: the killed gateway dies holding notifications it read from the stream.
    servers = gateways(3, notification_max_delay_ms=1500, redis_claim_idle_ms=1500)
    visitors = warm(servers, 12)
    wait_for(lambda: stream_left(redis_server) == (0, 0) and displays(emulator)["display"] == 24, timeout=15)
    before = displays(emulator)

    stream = SpreadStream([s.url for s in servers], visitors, total=6000).start()
    wait_for(lambda: stream.acknowledged >= 1500, timeout=30)
    victim = servers[2]
    with redis_server.client() as client:
        consumers = client.xinfo_consumers("target-proxy:notifications", "flushers")
    victim.kill()
    # Its consumer (named after its process) held notifications read from the stream and not settled yet.
    assert victim.process is not None
    held = {c["name"].decode(): c["pending"] for c in consumers}
    victim_held = [n for name, n in held.items() if f"-{victim.process.pid}-" in name]
    assert victim_held and victim_held[0] > 0, held
    stream.join()

    assert stream.refused == []
    assert stream.dead == {2} and stream.broken >= 1, "the stream ran into the kill"
    assert stream.by_gateway[2] > 0 and min(stream.by_gateway[:2]) > 0
    # The survivors claim what the killed gateway held, once it has been idle 1.5 s, and send it. What a
    # gateway spooled to its own log (a Redis command that timed out under load) waits on its disk: the
    # killed one is started again on it, as an operator would, and delivers it.
    victim.start(expect=["gateway"])
    pool = [httpx.Client(base_url=s.url, timeout=10) for s in servers]
    wait_for(
        lambda: stream_left(redis_server) == (0, 0) and all(queue_status(c)["depth"] == 0 for c in pool), timeout=30
    )
    spooled = [queue_status(c)["shared"]["spooledLocally"] for c in pool]
    for client in pool:
        client.close()
    counted = displays(emulator)
    impressions = counted["impressions"] - before["impressions"]
    # Every view answered was durable first (in Redis, else on its gateway's disk); views cut off by the kill
    # may or may not have been.
    assert stream.acknowledged <= impressions <= stream.acknowledged + stream.broken, f"spooled locally: {spooled}"
    assert counted["display"] - before["display"] == impressions, f"{counted['duplicates']} duplicate(s) reported"
    print(
        f"views acknowledged {stream.acknowledged}, cut off {stream.broken}, impressions {impressions}, "
        f"duplicates {counted['duplicates'] - before['duplicates']}"
    )
    claimed = 0
    for server in servers[:2]:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            status = queue_status(client)
        assert status["depth"] == 0 and status["shared"]["held"] == 0
        claimed += status["shared"]["claimed"]
    assert claimed > 0, "the survivors claimed what the killed gateway held"


def test_redis_restarted_under_load_loses_no_display(
    gateways: StartGateways, emulator: httpx.Client, redis_server: RedisServer
) -> None:
    servers = gateways(2, notification_max_delay_ms=200, redis_claim_idle_ms=3000)
    visitors = warm(servers, 8)
    wait_for(lambda: displays(emulator)["display"] == 8, timeout=15)
    before = displays(emulator)
    pool = [httpx.Client(base_url=s.url, timeout=10) for s in servers]

    stream = SpreadStream([s.url for s in servers], visitors, total=8000, concurrency=8).start()
    wait_for(lambda: stream.acknowledged >= 1000, timeout=30)
    redis_server.stop()
    # Readiness says so, and the gateways keep answering, from memory, spooling notifications locally.
    for client in pool:
        ready = wait_for(lambda c=client: (r := c.get("/readyz").json())["checks"]["redis"]["available"] is False and r)
        assert ready["status"] == "ready"
        assert "spooling locally" in ready["checks"]["redis"]["detail"]
    down_at = stream.acknowledged
    wait_for(lambda: stream.acknowledged >= down_at + 1000, timeout=30)
    redis_server.start()
    for client in pool:
        wait_for(lambda c=client: c.get("/readyz").json()["checks"]["redis"]["available"], timeout=10)
    stream.join()
    assert stream.refused == [] and stream.broken == 0

    spooled = [queue_status(client)["shared"]["spooledLocally"] for client in pool]
    assert all(spooled), spooled
    # What was spooled goes to the edge from each gateway's log; what was in Redis, from the stream.
    wait_for(lambda: stream_left(redis_server) == (0, 0), timeout=30)
    wait_for(lambda: all(queue_status(client)["depth"] == 0 for client in pool), timeout=30)
    counted = displays(emulator)
    impressions = counted["impressions"] - before["impressions"]
    assert impressions == stream.acknowledged, f"{counted['duplicates']} duplicate(s) reported"
    assert counted["display"] - before["display"] == impressions
    print(f"views {stream.acknowledged}, spooled locally {sum(spooled)}, duplicates {counted['duplicates']}")
    for client in pool:
        client.close()


def test_a_view_is_answered_with_redis_gone_from_the_start(
    gateways: StartGateways, redis_server: RedisServer, emulator: httpx.Client
) -> None:
    redis_server.stop()
    (server,) = gateways(1, notification_max_delay_ms=200)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        visitor = new_visitor()
        assert view(client, visitor).status_code == 200
        assert view(client, visitor, "home-banner").status_code == 200
        checks = client.get("/readyz").json()["checks"]
        assert checks["redis"]["available"] is False
        wait_for(lambda: displays(emulator)["display"] == 1, timeout=10)
