"""POST /_emulator/faults and the front door: latency, errors, outages, resets, slow bodies, 420."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.emulator.support import (
    CLIENT,
    WEB,
    stats,
)
from tests.support import Call, post_concurrently

HERO = {"mbox": "home-hero"}


def set_faults(client: httpx.Client, faults: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/_emulator/faults", json=faults)
    assert response.status_code == 200, response.text
    return response.json()


def call_mbox(client: httpx.Client, session: str = "s-faults", body: dict[str, Any] = HERO) -> httpx.Response:
    return client.post(f"/rest/v1/mbox/{session}", params={"client": CLIENT}, json=body)


def timed(action: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def test_faults_are_off_after_a_reset(emulator: httpx.Client) -> None:
    assert emulator.get("/_emulator/faults").json() == {
        "latency_ms": 0.0,
        "error_rate": 0.0,
        "status": 503,
        "retry_after": None,
        "outage": False,
        "reset_rate": 0.0,
        "slow_body_ms": 0.0,
    }


def test_latency_delays_target_calls_but_not_control_calls(emulator: httpx.Client) -> None:
    assert set_faults(emulator, {"latency_ms": 300})["latency_ms"] == 300

    response, elapsed = timed(lambda: call_mbox(emulator))
    _, control_elapsed = timed(lambda: stats(emulator))

    assert response.status_code == 200
    assert elapsed >= 0.3
    assert control_elapsed < 0.3


def test_an_error_status_with_retry_after(emulator: httpx.Client) -> None:
    set_faults(emulator, {"error_rate": 1.0, "status": 429, "retry_after": 7})

    response = call_mbox(emulator)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json() == {"status": 429, "message": "injected fault"}
    assert stats(emulator)["impressions"] == 0


def test_a_bare_status_fails_every_call(emulator: httpx.Client) -> None:
    assert set_faults(emulator, {"status": 502})["error_rate"] == 1.0

    statuses = {call_mbox(emulator).status_code for _ in range(5)}

    assert statuses == {502}
    assert "retry-after" not in call_mbox(emulator).headers


def test_a_partial_error_rate_fails_some_calls(emulator: httpx.Client) -> None:
    set_faults(emulator, {"error_rate": 0.5})

    statuses = Counter(call_mbox(emulator).status_code for _ in range(60))

    assert set(statuses) == {200, 503}, statuses


def test_an_outage_drops_connections_and_control_calls_still_work(emulator: httpx.Client) -> None:
    set_faults(emulator, {"outage": True})

    for send in (
        lambda: call_mbox(emulator),
        lambda: emulator.post("/rest/v1/delivery", params={"client": CLIENT, "sessionId": "s"}, json={"context": WEB}),
        lambda: emulator.get("/rest/v1/profiles/1-1", params={"client": CLIENT}),
    ):
        with pytest.raises(httpx.TransportError):
            send()

    assert stats(emulator)["impressions"] == 0
    assert emulator.get("/_emulator/faults").json()["outage"] is True


def test_a_reset_rate_drops_some_connections(emulator: httpx.Client) -> None:
    set_faults(emulator, {"reset_rate": 0.5})

    outcomes = Counter()
    for _ in range(40):
        try:
            outcomes[call_mbox(emulator).status_code] += 1
        except httpx.TransportError:
            outcomes["dropped"] += 1

    assert set(outcomes) == {200, "dropped"}, outcomes


def test_a_slow_body_trickles_but_arrives_whole(emulator: httpx.Client) -> None:
    visitor = {**HERO, "tntId": "slow-reader"}
    expected = call_mbox(emulator, body=visitor).json()
    set_faults(emulator, {"slow_body_ms": 40})

    response, elapsed = timed(lambda: call_mbox(emulator, body=visitor))

    chunks = -(-len(response.content) // 64)
    assert chunks >= 3
    assert elapsed >= chunks * 0.04
    assert response.json() == expected


def test_an_empty_object_clears_every_fault(emulator: httpx.Client) -> None:
    set_faults(emulator, {"latency_ms": 500, "error_rate": 1, "outage": True, "reset_rate": 1, "slow_body_ms": 100})

    cleared = set_faults(emulator, {})
    response, elapsed = timed(lambda: call_mbox(emulator))

    assert cleared == emulator.get("/_emulator/faults").json()
    assert cleared["outage"] is False and cleared["error_rate"] == 0 and cleared["latency_ms"] == 0
    assert response.status_code == 200
    assert elapsed < 0.5


def test_control_calls_are_never_faulted_nor_counted(emulator: httpx.Client) -> None:
    set_faults(emulator, {"error_rate": 1, "status": 500})

    for _ in range(3):
        assert emulator.get("/_emulator/stats").status_code == 200
        assert emulator.get("/_emulator/faults").status_code == 200

    assert stats(emulator)["requests"] == {}


@pytest.mark.parametrize(
    ("faults", "field"),
    [
        ({"latency": 5}, "latency"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"slow_body_ms": "slow"}, "slow_body_ms"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"reset_rate": True}, "reset_rate"),
        ({"status": 200}, "status"),
        ({"status": 600}, "status"),
        ({"retry_after": -3}, "retry_after"),
        ({"retry_after": 1.5}, "retry_after"),
        ({"outage": "yes"}, "outage"),
    ],
)
def test_bad_fault_settings_are_refused_and_change_nothing(
    emulator: httpx.Client, faults: dict[str, Any], field: str
) -> None:
    response = emulator.post("/_emulator/faults", json=faults)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert emulator.get("/_emulator/faults").json()["error_rate"] == 0.0


def test_a_body_that_is_not_an_object_is_refused(emulator: httpx.Client) -> None:
    response = emulator.post("/_emulator/faults", json=[1])

    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_more_than_100_concurrent_requests_in_one_session_get_420(emulator: httpx.Client, emulator_url: str) -> None:
    set_faults(emulator, {"latency_ms": 1000})
    single = [Call("/rest/v1/mbox/busy-single", HERO, params={"client": CLIENT}) for _ in range(105)]
    deliveries = [
        Call("/rest/v1/delivery", {"context": WEB}, params={"client": CLIENT, "sessionId": "busy-delivery"})
        for _ in range(103)
    ]
    others = [Call(f"/rest/v1/mbox/calm-{n}", HERO, params={"client": CLIENT}) for n in range(20)]

    answers = post_concurrently(emulator_url, [*single, *deliveries, *others], concurrency=300)

    by_group = [
        Counter(a.status for a in answers[:105]),
        Counter(a.status for a in answers[105:208]),
        Counter(a.status for a in answers[208:]),
    ]
    assert by_group == [Counter({200: 100, 420: 5}), Counter({200: 100, 420: 3}), Counter({200: 20})]
    refused = next(a for a in answers if a.status == 420)
    assert refused.body == {"status": 420, "message": "Too many requests with same session ID"}

    set_faults(emulator, {})
    assert call_mbox(emulator, "busy-single").status_code == 200
