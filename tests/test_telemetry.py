"""SDK telemetry (``telemetry.entries``) keeps a view cacheable: the entries ride upstream on the visitor's
notifications, or with its next miss; none is lost, at most 50 go with one request."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateways import DEMO_MBOXES, OwnGateway, own_gateway
from tests.support import wait_for


def entries(count: int, start: int = 0) -> dict[str, Any]:
    return {
        "entries": [
            {"requestId": f"r-{n}", "timestamp": 1_700_000_000_000 + n, "execution": 1.5}
            for n in range(start, start + count)
        ]
    }


def view(gw: OwnGateway, who: str, **extra: Any) -> httpx.Response:
    body = {
        "id": {"thirdPartyId": who},
        "context": {"channel": "web"},
        "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]},
        **extra,
    }
    answer = gw.client.post("/rest/v1/delivery?client=demo", json=body)
    assert answer.status_code == 200, answer.text
    return answer


def stats(emulator: httpx.Client) -> dict[str, Any]:
    return emulator.get("/_emulator/stats").json()  # type: ignore[no-any-return]


@pytest.fixture
def gw(gateway_settings: dict[str, Any], emulator: httpx.Client) -> Iterator[OwnGateway]:
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=200) as gw:
        yield gw


def test_views_with_telemetry_are_hits_and_every_entry_reaches_the_edge(gw: OwnGateway, emulator: httpx.Client) -> None:
    who = f"sdk-{uuid.uuid4().hex[:8]}"
    view(gw, who, telemetry=entries(1, 0))  # the miss: its entry goes with it
    for n in range(1, 20):
        view(gw, who, telemetry=entries(1, n))
    counted = wait_for(lambda: stats(emulator)["notifications"]["display"] >= 19 and stats(emulator), timeout=10)
    cache = gw.parts.cache.counters
    assert (cache.hits, cache.misses) == (19, 1), "telemetry does not make a view uncacheable"
    assert counted["notifications"]["display"] == 19, "each hit counted once"
    assert wait_for(lambda: stats(emulator)["telemetry"]["entries"] == 20 or None, timeout=10)
    assert stats(emulator)["requests"]["delivery"] <= 1 + 2, "the miss, and the flushes that carried the rest"


def test_at_most_fifty_entries_go_with_one_request_the_rest_are_counted_as_dropped(
    gw: OwnGateway, emulator: httpx.Client
) -> None:
    who = f"sdk-{uuid.uuid4().hex[:8]}"
    view(gw, who)
    before = gw.client.get("/metrics").text
    view(gw, who, telemetry=entries(60))
    assert wait_for(lambda: stats(emulator)["telemetry"]["entries"] == 50 or None, timeout=10)
    after = gw.client.get("/metrics").text

    def grew(outcome: str) -> float:
        from tests.ops.test_metrics import sample

        name = "target_proxy_telemetry_entries_total"
        return sample(after, name, outcome=outcome) - sample(before, name, outcome=outcome)

    assert grew("dropped") == 10 and grew("forwarded") == 50


def test_telemetry_on_notifications_alone_rides_with_them(gw: OwnGateway, emulator: httpx.Client) -> None:
    who = f"sdk-{uuid.uuid4().hex[:8]}"
    token = view(gw, who, prefetch={"mboxes": [{"index": 0, "name": "home-banner"}]}).json()
    event = token["prefetch"]["mboxes"][0]["options"][0]["eventToken"]
    note = {
        "id": "n-1",
        "type": "display",
        "timestamp": 1_700_000_000_000,
        "tokens": [event],
        "mbox": {"name": "home-banner"},
    }
    body = {
        "id": {"thirdPartyId": who},
        "context": {"channel": "web"},
        "notifications": [note],
        "telemetry": entries(3),
    }
    answer = gw.client.post("/rest/v1/delivery?client=demo", json=body)
    assert answer.status_code == 200 and answer.json()["notifications"] == [{"id": "n-1"}]
    assert wait_for(lambda: stats(emulator)["telemetry"]["entries"] == 3 or None, timeout=10)


def test_entries_riding_on_a_miss_are_counted_once(gateway_settings: dict[str, Any], emulator: httpx.Client) -> None:
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=600_000) as gw:
        who = f"sdk-{uuid.uuid4().hex[:8]}"
        view(gw, who)
        view(gw, who, telemetry=entries(2))  # a hit: its entries wait on its notification
        before = gw.client.get("/metrics").text
        other = {"index": 0, "name": "home-hero", "parameters": {"page": "other"}}
        body = {"id": {"thirdPartyId": who}, "context": {"channel": "web"}, "execute": {"mboxes": [other]}}
        miss = gw.client.post("/rest/v1/delivery?client=demo", json={**body, "telemetry": entries(3, 10)})
        assert miss.status_code == 200, miss.text
        after = gw.client.get("/metrics").text
    from tests.ops.test_metrics import sample

    name = "target_proxy_telemetry_entries_total"
    assert sample(after, name, outcome="forwarded") - sample(before, name, outcome="forwarded") == 5
    assert stats(emulator)["telemetry"]["entries"] == 5, "its own three and the two riding on the waiting view"
