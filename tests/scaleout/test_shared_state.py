"""Two or three gateways on one Redis act as one: a visitor keeps its session and edge whichever gateway
answers, content one gateway prefetched is served by the others, and a purge on one reaches all."""

from __future__ import annotations

from typing import Any

import httpx

from tests.notifications.helpers import OPERATOR, new_visitor, view
from tests.scaleout.conftest import StartGateways
from tests.support import wait_for


def clients(servers: list[Any]) -> list[httpx.Client]:
    return [httpx.Client(base_url=server.url, timeout=10) for server in servers]


def cache_status(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/_proxy/cache", headers=OPERATOR)
    answer.raise_for_status()
    return answer.json()


def last_delivery_host(emulator: httpx.Client) -> str:
    recorded = emulator.get("/_emulator/last-request", params={"route": "delivery"}).json()
    return str(recorded["headers"]["host"])


def test_a_visitor_keeps_one_session_and_edge_whichever_gateway_answers(
    gateways: StartGateways, emulator: httpx.Client
) -> None:
    pool = clients(gateways(3))
    visitors = [new_visitor() for _ in range(4)]
    sessions: dict[str, set[str]] = {v: set() for v in visitors}
    edges: dict[str, set[str]] = {v: set() for v in visitors}
    for round_ in range(6):
        for n, visitor in enumerate(visitors):
            client = pool[(round_ + n) % len(pool)]
            # A page of its own each time: the view is a miss, so it goes upstream, to the visitor's edge.
            answer = view(client, visitor, mboxParameters={"page": str(round_)})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            sessions[visitor].add(body["sessionId"])
            if round_:
                edges[visitor].add(last_delivery_host(emulator))
    for visitor in visitors:
        assert len(sessions[visitor]) == 1, sessions[visitor]
        (edge,) = edges[visitor]
        assert edge.startswith("mboxedge") and edge.endswith(".tt.omtrdc.net"), edge
    assert len({s for found in sessions.values() for s in found}) == len(visitors), "one session per visitor"
    for client in pool:
        client.close()


def test_content_prefetched_by_one_gateway_is_served_by_the_others(
    gateways: StartGateways, emulator: httpx.Client
) -> None:
    pool = clients(gateways(3))
    visitor = new_visitor()
    assert view(pool[0], visitor, "home-hero").status_code == 200  # the miss: prefetches the catalog
    for client in pool[1:]:
        before = cache_status(client)
        assert view(client, visitor, "home-banner").status_code == 200
        after = cache_status(client)
        assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (1, 0)
    for client in pool:
        client.close()


def purge_everywhere(pool: list[httpx.Client], by: httpx.Client, path: str, **params: str) -> None:
    """A purge on gateway ``by``, and the moment it has reached every gateway: the purging one answers once
    its purge has gone round; the others take it as the message reaches them."""
    received = [cache_status(client)["purgesReceived"] for client in pool]
    answer = by.delete(path, params=params, headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    for client, before in zip(pool, received, strict=True):
        wait_for(lambda c=client, b=before: cache_status(c)["purgesReceived"] > b, timeout=10)


def lookups(client: httpx.Client) -> tuple[int, int]:
    status = cache_status(client)
    return status["hits"], status["misses"]


def test_a_purge_on_one_gateway_is_seen_by_every_gateway(gateways: StartGateways, emulator: httpx.Client) -> None:
    pool = clients(gateways(3))
    # A visitor of each gateway's, whose content every gateway has in memory.
    visitors = [new_visitor() for _ in pool]
    for visitor in visitors:
        assert view(pool[0], visitor, "home-hero").status_code == 200
        for client in pool:
            assert view(client, visitor, "home-banner").status_code == 200

    purge_everywhere(pool, pool[1], "/_proxy/cache")

    # Once it has, the very next view on every gateway is a miss, in memory and in Redis alike.
    for client, visitor in zip(pool, visitors, strict=True):
        hits, misses = lookups(client)
        assert view(client, visitor, "tv-rail-1").status_code == 200
        assert lookups(client) == (hits, misses + 1)
    # ... and that miss filled the cache again, for every gateway.
    for client in pool:
        for visitor in visitors:
            hits, misses = lookups(client)
            assert view(client, visitor, "tv-rail-2").status_code == 200
            assert lookups(client) == (hits + 1, misses)

    # One mbox purged for the client: on every gateway its next view misses; the visitor's others still hit.
    purge_everywhere(pool, pool[2], "/_proxy/cache/mboxes/tv-rail-2", client="demo")
    for client, visitor in zip(pool, visitors, strict=True):
        hits, misses = lookups(client)
        assert view(client, visitor, "tv-rail-2").status_code == 200
        assert view(client, visitor, "product-reco").status_code == 200
        assert lookups(client) == (hits + 1, misses + 1)
    for client in pool:
        client.close()
