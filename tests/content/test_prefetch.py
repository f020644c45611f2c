"""Views answered from the prefetch cache, over real sockets: one upstream call per visitor, every
display counted once upstream, coalesced misses, clicks, stale-if-error, purges."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import OPERATOR_KEY
from tests.gateways import DEMO_MBOXES, OwnGateway, own_gateway
from tests.support import Call, post_concurrently, wait_for

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture
def gateway_with_groups(gateway_settings: dict[str, Any]) -> Iterator[OwnGateway]:
    """A gateway that prefetches the whole demo catalog on a visitor's first miss."""
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=200) as gw:
        yield gw


def visitor() -> str:
    return f"kiosk-{uuid.uuid4().hex[:10]}"


def view(gateway: httpx.Client, who: str, mbox: str, **extra: Any) -> dict[str, Any]:
    answer = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": mbox, "thirdPartyId": who, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def stats(emulator: httpx.Client) -> dict[str, Any]:
    return emulator.get("/_emulator/stats").json()


def drained(gw: OwnGateway) -> bool:
    return gw.parts.store.depth() == 0


def test_k_views_cost_one_delivery_call_plus_a_flush_per_50(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    views = 120
    # A partial batch waits 3 s: the views below take less, so only full batches go out meanwhile.
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=3000) as gw:
        who = visitor()
        contents: dict[str, set[str]] = {}
        for n in range(views):
            mbox = DEMO_MBOXES[n % len(DEMO_MBOXES)]
            contents.setdefault(mbox, set()).add(view(gw.client, who, mbox)["content"])
        wait_for(lambda: drained(gw), timeout=15)
        cache = gw.client.get("/_proxy/cache", headers=OPERATOR).json()
    assert all(len(seen) == 1 for seen in contents.values()), "a visitor sees one experience per mbox"
    counted = stats(emulator)
    # One miss executed the first view; the other 119 were served from memory: ceil(119 / 50) flushes.
    assert counted["requests"] == {"delivery": 1 + 3}
    assert counted["impressions"] == views
    assert counted["notifications"] == {"display": views - 1, "click": 0, "duplicates": 0}
    assert cache["hits"] == views - 1 and cache["entries"] == len(DEMO_MBOXES)


def test_concurrent_identical_misses_share_one_upstream_call(
    gateway_with_groups: OwnGateway, emulator: httpx.Client
) -> None:
    gw, who = gateway_with_groups, visitor()
    emulator.post("/_emulator/faults", json={"latency_ms": 300}).raise_for_status()
    calls = [Call("/rest/v1/mbox", {"mbox": "home-hero", "thirdPartyId": who}, {"client": "demo"})] * 20
    answers = post_concurrently(gw.url, calls, concurrency=20)
    assert {a.status for a in answers} == {200}
    assert len({a.body["content"] for a in answers}) == 1
    assert stats(emulator)["requests"] == {"delivery": 1}, "twenty identical misses, one upstream call"
    emulator.post("/_emulator/faults", json={}).raise_for_status()
    wait_for(lambda: drained(gw), timeout=10)
    assert stats(emulator)["impressions"] == 20
    assert gw.parts.cache.counters.hits + 1 == 20


def test_clicks_on_cached_content_are_counted(gateway_with_groups: OwnGateway, emulator: httpx.Client) -> None:
    gw, who = gateway_with_groups, visitor()
    shown = view(gw.client, who, "home-hero")["content"]
    clicked = view(gw.client, who, "home-hero", clicked=True)
    assert clicked["content"] == shown
    wait_for(lambda: drained(gw), timeout=10)
    counted = stats(emulator)
    assert counted["requests"] == {"delivery": 2}, "the click was a notification, not a single mbox call"
    assert counted["notifications"]["click"] == 1
    assert counted["activities"]["200001"]["clicks"] == 1


DEFAULTS = {"checkout-promo": "<p>Free returns</p>"}


@contextlib.contextmanager
def falling_back(gateway_settings: dict[str, Any]) -> Iterator[OwnGateway]:
    """A gateway that prefetches home-hero alone and has default content for checkout-promo."""
    with own_gateway(
        gateway_settings,
        prefetch_groups={"demo": ["home-hero"]},
        default_content=DEFAULTS,
        notification_max_delay_ms=200,
    ) as gw:
        yield gw


def test_stale_if_error_then_default_content_then_the_error(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with falling_back(gateway_settings) as gw:
        who = visitor()
        before = view(gw.client, who, "home-hero")["content"]
        emulator.post("/_emulator/faults", json={"status": 503}).raise_for_status()
        # Another context is a miss; upstream fails; the visitor's last content stands in.
        stale = view(gw.client, who, "home-hero", mboxParameters={"screenWidth": 640})
        assert stale["content"] == before
        assert view(gw.client, who, "checkout-promo")["content"] == DEFAULTS["checkout-promo"]
        failed = gw.client.post("/rest/v1/mbox?client=demo", json={"mbox": "product-reco", "thirdPartyId": who})
        assert failed.status_code == 503 and failed.json()["status"] == 503
        assert gw.parts.cache.counters.stale_served == 1
        emulator.post("/_emulator/faults", json={}).raise_for_status()
        wait_for(lambda: drained(gw), timeout=15)
    counted = stats(emulator)
    assert counted["impressions"] == 2, "the first view executed, the stale view was notified"
    assert counted["notifications"]["display"] == 1


def test_a_profile_write_goes_upstream_and_refreshes_the_cache(
    gateway_with_groups: OwnGateway, emulator: httpx.Client
) -> None:
    gw, who = gateway_with_groups, visitor()
    assert "Welcome!" in view(gw.client, who, "home-banner")["content"]
    assert "Welcome!" in view(gw.client, who, "home-banner")["content"]
    written = view(gw.client, who, "home-banner", profileParameters={"memberLevel": "gold"})
    assert "Gold members" in written["content"]
    assert "Gold members" in view(gw.client, who, "home-banner")["content"], "served from the refreshed cache"
    assert stats(emulator)["requests"] == {"delivery": 2}


def test_operators_purge_by_visitor_mbox_and_all(gateway_with_groups: OwnGateway, emulator: httpx.Client) -> None:
    gw, who = gateway_with_groups, visitor()

    def upstream_calls() -> int:
        return stats(emulator)["requests"].get("delivery", 0)

    view(gw.client, who, "home-hero")
    view(gw.client, who, "home-hero")
    assert upstream_calls() == 1

    assert gw.client.delete("/_proxy/cache/visitors", params={"client": "demo", "thirdPartyId": who}).status_code == 401
    purged = gw.client.delete(
        "/_proxy/cache/visitors", params={"client": "demo", "thirdPartyId": who}, headers=OPERATOR
    )
    assert purged.json() == {"purged": True}
    view(gw.client, who, "home-hero")
    assert upstream_calls() == 2

    gw.client.delete("/_proxy/cache/mboxes/home-banner", params={"client": "demo"}, headers=OPERATOR).raise_for_status()
    view(gw.client, who, "home-hero")
    assert upstream_calls() == 2, "another mbox's purge leaves this one cached"
    view(gw.client, who, "home-banner")
    assert upstream_calls() == 3

    gw.client.delete("/_proxy/cache", headers=OPERATOR).raise_for_status()
    view(gw.client, who, "product-reco")
    assert upstream_calls() == 4


def test_waiting_notifications_ride_on_the_visitors_next_miss(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=600_000) as gw:
        who = visitor()
        view(gw.client, who, "home-hero")
        view(gw.client, who, "home-banner")
        assert gw.parts.store.depth() == 1, "the display waits for a batch or the visitor's next call"
        view(gw.client, who, "home-hero", mboxParameters={"screenWidth": 640})  # another context: a miss
        assert gw.parts.store.depth() == 0
        counted = stats(emulator)
        assert counted["requests"] == {"delivery": 2}
        assert counted["notifications"]["display"] == 1
        assert gw.parts.queue.counters.ridden == 1


def test_delivery_api_executes_from_the_cache(gateway_with_groups: OwnGateway, emulator: httpx.Client) -> None:
    gw = gateway_with_groups
    request = {
        "id": {"thirdPartyId": visitor()},
        "context": {"channel": "web"},
        "execute": {"mboxes": [{"index": 0, "name": "home-hero"}, {"index": 1, "name": "product-reco"}]},
    }
    first = gw.client.post("/rest/v1/delivery?client=demo&sessionId=page-1", json=request).json()
    assert "prefetch" not in first, "what the gateway prefetched for itself stays with it"
    second = gw.client.post("/rest/v1/delivery?client=demo&sessionId=page-1", json=request).json()
    assert stats(emulator)["requests"] == {"delivery": 1}
    assert second["id"]["tntId"] == first["id"]["tntId"]
    for served, fetched in zip(second["execute"]["mboxes"], first["execute"]["mboxes"], strict=True):
        assert served["index"] == fetched["index"] and served["name"] == fetched["name"]
        assert [o["content"] for o in served["options"]] == [o["content"] for o in fetched["options"]]
        assert all("eventToken" not in o for o in served["options"])
        assert [m["type"] for m in served["metrics"]] == [m["type"] for m in fetched["metrics"]]
    wait_for(lambda: drained(gw), timeout=10)
    assert stats(emulator)["impressions"] == 4


def test_notifications_sent_by_a_client_are_taken_over(gateway_with_groups: OwnGateway, emulator: httpx.Client) -> None:
    gw, who = gateway_with_groups, visitor()
    page = {
        "id": {"thirdPartyId": who},
        "context": {"channel": "web"},
        "prefetch": {"mboxes": [{"index": 0, "name": "product-reco"}]},
    }
    token = gw.client.post("/rest/v1/delivery?client=demo&sessionId=s-1", json=page).json()["prefetch"]["mboxes"][0][
        "options"
    ][0]["eventToken"]
    note = {"id": "display-1", "type": "display", "timestamp": 1_700_000_000_000, "tokens": [token]}
    taken = gw.client.post(
        "/rest/v1/delivery?client=demo&sessionId=s-1",
        json={"id": {"thirdPartyId": who}, "context": {"channel": "web"}, "notifications": [note]},
    )
    assert taken.status_code == 200 and taken.json()["notifications"] == [{"id": "display-1"}]
    wait_for(lambda: stats(emulator)["notifications"]["display"] == 1, timeout=10)
    assert stats(emulator)["impressions"] == 1


def page_request(who: str, *names: str, **context: Any) -> dict[str, Any]:
    return {
        "id": {"thirdPartyId": who},
        "context": {"channel": "web", **context},
        "execute": {"mboxes": [{"index": n, "name": name} for n, name in enumerate(names)]},
    }


def test_identical_delivery_misses_are_coalesced(gateway_with_groups: OwnGateway, emulator: httpx.Client) -> None:
    gw, who = gateway_with_groups, visitor()
    emulator.post("/_emulator/faults", json={"latency_ms": 300}).raise_for_status()
    page = page_request(who, "home-hero", "product-reco")
    calls = [Call("/rest/v1/delivery", page, {"client": "demo", "sessionId": "page-1"})] * 20
    answers = post_concurrently(gw.url, calls, concurrency=20)
    assert {a.status for a in answers} == {200}
    assert len({str(a.body["execute"]) for a in answers}) == 1, "one decision for all"
    assert stats(emulator)["requests"] == {"delivery": 1}, "twenty identical page misses, one upstream call"
    emulator.post("/_emulator/faults", json={}).raise_for_status()
    wait_for(lambda: drained(gw), timeout=10)
    assert stats(emulator)["impressions"] == 40, "every mbox of every page counted once"


def test_delivery_stale_if_error_then_default_content_then_the_error(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with falling_back(gateway_settings) as gw:
        who = visitor()

        def page(*names: str, **context: Any) -> httpx.Response:
            body = page_request(who, *names, **context)
            return gw.client.post("/rest/v1/delivery?client=demo&sessionId=page-2", json=body)

        first = page("home-hero").json()["execute"]["mboxes"][0]
        emulator.post("/_emulator/faults", json={"status": 503}).raise_for_status()
        # Another context is a miss; upstream fails; the visitor's last content and the default stand in.
        fallback = page("home-hero", "checkout-promo", address={"url": "https://shop.example/other"})
        assert fallback.status_code == 200, fallback.text
        hero, promo = fallback.json()["execute"]["mboxes"]
        assert [o["content"] for o in hero["options"]] == [o["content"] for o in first["options"]]
        assert promo["options"] == [{"type": "html", "content": DEFAULTS["checkout-promo"]}]
        failed = page("home-hero", "product-reco", address={"url": "https://shop.example/third"})
        assert failed.status_code == 503 and failed.json()["status"] == 503, "no stale or default for one of them"
        emulator.post("/_emulator/faults", json={}).raise_for_status()
        wait_for(lambda: drained(gw), timeout=15)
    counted = stats(emulator)
    assert counted["impressions"] == 2, "the first page executed, the stale view was notified"
    assert counted["notifications"]["display"] == 1
