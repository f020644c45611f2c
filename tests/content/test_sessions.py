"""Sessions: reuse, 30-minute sliding expiry (injected clock), bounds, and never shared."""

from __future__ import annotations

import httpx

from proxy.app import create_app
from proxy.content.sessions import InMemorySessionStore
from proxy.settings import Settings
from tests.inprocess import FakeClock, serve_in_thread


def test_session_slides_for_thirty_minutes_then_expires(gateway_settings: dict[str, object]) -> None:
    clock = FakeClock()
    app = create_app(Settings(**gateway_settings), clock=clock)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=5) as gateway:

        def session_of(visitor: str) -> str:
            answer = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": visitor})
            assert answer.status_code == 200
            return answer.json()["sessionId"]

        first = session_of("kiosk-1")
        clock.advance(29 * 60)
        assert session_of("kiosk-1") == first
        clock.advance(29 * 60)
        assert session_of("kiosk-1") == first, "30 minutes counted from the last request"
        clock.advance(30 * 60 + 1)
        renewed = session_of("kiosk-1")
        assert renewed != first
        assert session_of("kiosk-2") not in (first, renewed)
        assert app.state.gateway.sessions.created == 3


def test_store_is_bounded_and_links_every_id_of_a_visitor() -> None:
    clock = FakeClock()
    store = InMemorySessionStore(ttl_seconds=1800, max_visitors=100, clock=clock)
    first = store.resolve(["demo|p|alice"], None)
    store.link(first, ["demo|t|123"])
    assert store.resolve(["demo|t|123"], None) is first
    assert store.resolve(["demo|m|xyz", "demo|p|alice"], None) is first
    for n in range(1000):
        store.resolve([f"demo|p|visitor-{n}"], None)
    assert len(store) == 100
    assert store.evicted >= 900
    assert store.find(["demo|p|alice"]) is None, "least recently used visitors leave first"


def test_sweep_drops_expired_sessions() -> None:
    clock = FakeClock()
    store = InMemorySessionStore(ttl_seconds=60, max_visitors=100, clock=clock)
    for n in range(10):
        store.resolve([f"demo|p|{n}"], None)
    clock.advance(30)
    store.resolve(["demo|p|0"], None)
    clock.advance(31)
    assert store.sweep() == 9
    assert len(store) == 1


def test_supplied_session_is_honoured() -> None:
    store = InMemorySessionStore(ttl_seconds=60, max_visitors=10, clock=FakeClock())
    record = store.resolve(["demo|p|a"], "client-chosen")
    assert record.session_id == "client-chosen"
    assert store.resolve(["demo|p|a"], None).session_id == "client-chosen"
