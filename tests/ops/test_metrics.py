"""/metrics after real traffic: the counts match what happened."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx

from tests.gateways import DEMO_MBOXES, own_gateway
from tests.support import wait_for


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_counts_after_real_traffic(gateway_settings: dict[str, Any], emulator: httpx.Client) -> None:
    # The registry belongs to the process, which other in-process gateways of the suite share: compare
    # a scrape before the traffic with one after.
    with own_gateway(gateway_settings, prefetch_groups={"demo": DEMO_MBOXES}, notification_max_delay_ms=200) as gw:
        before = gw.client.get("/metrics").text
        visitor = f"metrics-{uuid.uuid4().hex[:8]}"
        for mbox in DEMO_MBOXES[:5]:
            answer = gw.client.post("/rest/v1/mbox?client=demo", json={"mbox": mbox, "thirdPartyId": visitor})
            assert answer.status_code == 200
        assert gw.client.post("/rest/v1/mbox?client=demo", json={"mbox": "a<b"}).status_code == 400
        wait_for(lambda: gw.parts.store.depth() == 0, timeout=10)
        text = gw.client.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return sample(text, name, **labels) - sample(before, name, **labels)

    assert grew("target_proxy_requests_total", route="/rest/v1/mbox", status="200") == 5
    assert grew("target_proxy_requests_total", route="/rest/v1/mbox", status="400") == 1
    assert grew("target_proxy_request_duration_seconds_count", route="/rest/v1/mbox") == 6
    assert grew("target_proxy_requests_total", route="/metrics", status="200") == 1
    assert grew("target_proxy_cache_lookups_total", outcome="hit") == 4
    assert grew("target_proxy_cache_lookups_total", outcome="miss") == 1
    assert sample(text, "target_proxy_cache_entries") == len(DEMO_MBOXES)
    assert sample(text, "target_proxy_sessions") == 1
    assert grew("target_proxy_notifications_total", outcome="accepted") == 4
    assert grew("target_proxy_notifications_total", outcome="flushed") == 4
    assert sample(text, "target_proxy_notification_backlog") == 0
    assert grew("target_proxy_upstream_requests_total", upstream="edge", outcome="ok") == 2
    # Sub-millisecond buckets exist for the cached answers.
    assert 'le="0.00025"' in text
    assert emulator.get("/_emulator/stats").json()["requests"] == {"delivery": 2}


def test_readiness_probes_are_not_upstream_errors_and_there_are_no_created_series(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(gateway_settings) as gw:
        before = gw.client.get("/metrics").text
        for _ in range(3):
            assert gw.client.get("/readyz").status_code == 200
            time.sleep(1.05)  # the probe is kept for a second: each readiness call here probes
        text = gw.client.get("/metrics").text

    def grew(**labels: str) -> float:
        return sample(text, "target_proxy_upstream_requests_total", **labels) - sample(
            before, "target_proxy_upstream_requests_total", **labels
        )

    assert grew(upstream="edge", outcome="probe") == 3, "each probe counted, as a probe"
    assert grew(upstream="edge", outcome="error") == 0, "a probe answered 405 by design is no error"
    assert not [line for line in text.splitlines() if "_created" in line]
