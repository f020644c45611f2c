"""Liveness and readiness, and how readiness follows upstream."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateways import own_gateway
from tests.support import wait_for


def ready(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    answer = client.get("/readyz")
    return answer.status_code, answer.json()


def test_readiness_flips_with_an_upstream_outage_and_back(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(gateway_settings) as gw:
        assert gw.client.get("/healthz").json() == {"status": "ok"}
        status, body = ready(gw.client)
        assert status == 200 and body["checks"]["upstream"]["reachable"]

        emulator.post("/_emulator/faults", json={"outage": True}).raise_for_status()
        status, body = wait_for(lambda: (r := ready(gw.client))[0] == 503 and r, timeout=10)
        assert body["status"] == "not ready"
        assert body["checks"]["upstream"] == {
            "ok": False,
            "reachable": False,
            "detail": body["checks"]["upstream"]["detail"],
        }
        assert gw.client.get("/healthz").status_code == 200, "alive all the same"

        emulator.post("/_emulator/faults", json={}).raise_for_status()
        status, body = wait_for(lambda: (r := ready(gw.client))[0] == 200 and r, timeout=10)
        assert body["checks"]["notifications"] == {
            "ok": True,
            "backlog": 0,
            "bound": 200_000,
            "detail": "0 waiting of at most 200000",
        }


def test_cached_content_keeps_the_gateway_ready_through_an_outage(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(gateway_settings) as gw:
        gw.client.post(
            "/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": "ready-1"}
        ).raise_for_status()
        emulator.post("/_emulator/faults", json={"outage": True}).raise_for_status()
        status, body = wait_for(lambda: (r := ready(gw.client))[1]["checks"]["upstream"]["reachable"] is False and r)
        assert status == 200
        assert "serving 1 cached entries" in body["checks"]["upstream"]["detail"]


def test_readiness_needs_a_token_when_credentials_are_configured(gateway_settings: dict[str, Any]) -> None:
    with own_gateway(gateway_settings, ims_client_id="emulator-client-id", ims_client_secret="wrong-secret") as gw:
        status, body = ready(gw.client)
        assert status == 503
        assert body["checks"]["credentials"]["ok"] is False
        assert "wrong-secret" not in str(body)
    with own_gateway(
        gateway_settings, ims_client_id="emulator-client-id", ims_client_secret="emulator-client-secret"
    ) as gw:
        status, body = ready(gw.client)
        assert status == 200 and body["checks"]["credentials"]["ok"] is True


def test_the_backlog_bound_is_a_readiness_check(gateway_settings: dict[str, Any], emulator: httpx.Client) -> None:
    emulator.post("/_emulator/faults", json={"status": 503}).raise_for_status()
    with own_gateway(gateway_settings, notification_max_backlog=1, notification_max_delay_ms=600_000) as gw:
        note = {"id": "n-1", "type": "display", "timestamp": 1_700_000_000_000, "tokens": ["t"]}
        body = {"id": {"thirdPartyId": "backlog-1"}, "context": {"channel": "web"}, "notifications": [note]}
        assert gw.client.post("/rest/v1/delivery?client=demo&sessionId=s", json=body).status_code == 200
        status, answer = ready(gw.client)
        assert status == 503
        assert answer["checks"]["notifications"] == {
            "ok": False,
            "backlog": 1,
            "bound": 1,
            "detail": "1 waiting of at most 1",
        }
