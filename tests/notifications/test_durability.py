"""Gateway processes (``python -m proxy serve --upstream <emulator>``, each test on its own store root)
that are killed, stopped, cut off from the edge or filled up while they serve cached views: the
emulator ends up counting every display the gateway answered, once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.notifications.helpers import (
    DEMO_MBOXES,
    ViewStream,
    deliveries,
    display_note,
    faults,
    log_directories,
    new_visitor,
    notifications_only,
    queue_status,
    stats,
    stored_ids,
    view,
    view_call,
)
from tests.servers import ServerProcess
from tests.support import post_concurrently, wait_for

StartGateway = Callable[..., ServerProcess]


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """Where ``gateway_env`` points the gateways' notification store."""
    return tmp_path / "notifications"


def first_views(url: str, count: int) -> list[str]:
    """``count`` visitors, each after its miss (which prefetched the whole demo catalog)."""
    visitors = [new_visitor() for _ in range(count)]
    calls = [view_call(v) for v in visitors]
    assert [a.status for a in post_concurrently(url, calls, concurrency=count)] == [200] * count
    return visitors


def impressions_since(emulator: httpx.Client, before: dict[str, Any]) -> int:
    return int(stats(emulator)["impressions"] - before["impressions"])


def test_a_killed_gateway_loses_no_display_it_answered(
    gateway_processes: StartGateway, emulator: httpx.Client, tmp_path: Path, store_root: Path
) -> None:
    # The first gateway keeps its notifications (no flush within 10 minutes): none is out on a lease
    # when it dies, so the second one may send them all at once rather than after the lease.
    first = gateway_processes(tmp_path, notification_max_delay_ms=600_000)
    visitors = first_views(first.url, 8)
    before = stats(emulator)
    stream = ViewStream(first.url, visitors, DEMO_MBOXES, total=20_000).start()
    wait_for(lambda: stream.acknowledged >= 400, timeout=20)
    first.kill()
    stream.join()
    assert stream.refused == []
    assert stream.broken >= 1, "the stream ran into the kill"
    # Every view answered was written first; views cut off by the kill may or may not have been.
    (left,) = log_directories(store_root)
    kept = len(stored_ids(store_root))
    assert stream.acknowledged <= kept <= stream.acknowledged + stream.broken
    assert stats(emulator) == before, "nothing sent yet"

    # The next gateway on the same root adopts what the killed one left.
    second = gateway_processes(tmp_path, notification_max_delay_ms=600_000)
    # The backlog of the earlier run goes first, however young, in calls of 50 per visitor.
    wait_for(lambda: stats(emulator)["notifications"]["display"] >= kept, timeout=15)
    with httpx.Client(base_url=second.url, timeout=10) as client:
        wait_for(lambda: queue_status(client)["depth"] == 0)
    counted = stats(emulator)
    duplicates = counted["notifications"]["duplicates"]
    assert counted["notifications"]["display"] == kept, f"{duplicates} duplicate(s) reported"
    assert impressions_since(emulator, before) == kept
    assert deliveries(emulator) - before["requests"]["delivery"] >= kept / 50
    assert not left.exists(), "adopted, then removed"
    assert stored_ids(store_root) == []


def test_sigterm_under_load_sends_every_display_before_exit(
    gateway_processes: StartGateway, emulator: httpx.Client, tmp_path: Path, store_root: Path
) -> None:
    gateway = gateway_processes(tmp_path, notification_max_delay_ms=200, shutdown_grace_seconds=8)
    visitors = first_views(gateway.url, 8)
    before = stats(emulator)
    faults(emulator, latency_ms=400)  # each notification call stays out a while
    stream = ViewStream(gateway.url, visitors, DEMO_MBOXES, total=20_000, concurrency=4).start()
    # Stop the gateway while one of its notification calls is out.
    wait_for(lambda: deliveries(emulator) > before["requests"]["delivery"], timeout=10)
    gateway.signal(signal.SIGTERM)
    stream.join()
    assert gateway.process is not None
    gateway.process.wait(20)  # uvicorn exits by the signal it caught, once it has shut down
    assert stream.refused == []
    assert stream.acknowledged > 0
    output = "".join(gateway.output)
    assert "Application shutdown complete" in output, output
    assert "kept in" not in output, output
    assert stored_ids(store_root) == []
    assert log_directories(store_root) == [], "a gateway that stops with nothing waiting leaves nothing"
    counted = stats(emulator)
    assert stream.acknowledged <= impressions_since(emulator, before) <= stream.acknowledged + stream.broken
    assert counted["notifications"]["display"] == impressions_since(emulator, before)
    assert counted["notifications"]["duplicates"] == 0


def test_an_outage_of_the_edge_loses_nothing_and_the_backlog_drains_after(
    gateway_processes: StartGateway, emulator: httpx.Client, tmp_path: Path
) -> None:
    gateway = gateway_processes(
        tmp_path,
        notification_max_delay_ms=200,
        notification_retry_base_ms=50,
        notification_retry_cap_ms=400,
    )
    visitors = first_views(gateway.url, 4)
    before = stats(emulator)
    faults(emulator, outage=True)
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        for i in range(40):
            assert view(client, visitors[i % 4], DEMO_MBOXES[i % 7]).status_code == 200
        wait_for(lambda: queue_status(client)["failed"] >= 40, timeout=10)  # each tried at least once
        assert queue_status(client)["depth"] == 40
        assert stats(emulator)["notifications"]["display"] == 0
        faults(emulator)
        wait_for(lambda: queue_status(client)["depth"] == 0, timeout=10)
        status = queue_status(client)
    counted = stats(emulator)
    assert counted["notifications"] == {"display": 40, "click": 0, "duplicates": 0}
    assert impressions_since(emulator, before) == 40
    assert status["flushed"] == 40 and status["deadLettered"] == 0


def test_a_full_backlog_sends_views_upstream_and_refuses_notifications(
    gateway_processes: StartGateway, emulator: httpx.Client, tmp_path: Path, store_root: Path
) -> None:
    gateway = gateway_processes(tmp_path, notification_max_backlog=5, notification_max_delay_ms=600_000)
    client = httpx.Client(base_url=gateway.url, timeout=10)
    filler, other = first_views(gateway.url, 2)
    before = stats(emulator)
    for mbox in DEMO_MBOXES[1:6]:
        assert view(client, filler, mbox).status_code == 200
    assert queue_status(client)["depth"] == 5
    assert len(stored_ids(store_root)) == 5
    assert deliveries(emulator) == before["requests"]["delivery"], "cache hits so far"

    # No room to count a cache hit: the view is executed upstream, which counts it.
    assert view(client, other, "home-banner").status_code == 200
    assert deliveries(emulator) == before["requests"]["delivery"] + 1
    # Concurrent identical views share a miss; those that cannot count their view go upstream too.
    faults(emulator, latency_ms=300)
    concurrent = post_concurrently(
        gateway.url,
        [view_call(other, "tv-rail-1")] * 6,
        concurrency=6,
    )
    faults(emulator)
    assert [a.status for a in concurrent] == [200] * 6
    # A click on cached content goes to the single mbox API, which counts the click.
    assert view(client, other, "product-reco-clicked").status_code == 200
    assert stats(emulator)["requests"].get("mbox") == 1
    # Upstream failing as well: an error rather than content nobody can count.
    faults(emulator, status=503, retry_after=7)
    unavailable = view(client, other, "home-banner", mboxParameters={"page": "2"})
    faults(emulator)
    assert unavailable.status_code == 503
    assert unavailable.headers["retry-after"] == "7"

    # Notifications alone are refused, to be sent again later.
    note = display_note("token")
    refused = client.post("/rest/v1/delivery?client=demo", json=notifications_only(other, [note]))
    assert refused.status_code == 503
    assert refused.json()["status"] == 503
    assert int(refused.headers["retry-after"]) > 0
    batch = {
        "client": "demo",
        "id": {"thirdPartyId": other},
        "notifications": [{"id": "n-1", "mbox": "home-hero", "eventTokens": ["token"], "timestamp": time.time()}],
    }
    refused_batch = client.post("/rest/v2/batchmbox", json=batch)
    assert refused_batch.status_code == 503 and "retry-after" in refused_batch.headers
    assert queue_status(client)["depth"] == 5

    # The filler's next view goes upstream, and its waiting displays ride along: room again.
    assert view(client, filler, "home-hero").status_code == 200
    status = queue_status(client)
    assert status["depth"] == 0 and status["ridden"] == 5
    assert view(client, filler, "tv-rail-2").status_code == 200
    assert queue_status(client)["depth"] == 1, "cache hits count by notification again"
    client.close()

    gateway.stop()
    assert stored_ids(store_root) == []
    counted = stats(emulator)
    views_answered = 5 + 1 + 6 + 1 + 1
    assert impressions_since(emulator, before) == views_answered
    assert counted["notifications"]["display"] == 5 + 1
    assert counted["activities"]["200003"].get("clicks") == 1
