"""The upstream client's budgets: timeouts become 504 and failures 502, in time."""

from __future__ import annotations

import time

import httpx

from proxy.app import create_app
from proxy.settings import Settings
from tests.inprocess import serve_in_thread


def test_timeout_answers_504_within_the_budget(emulator: httpx.Client, gateway_settings: dict[str, object]) -> None:
    emulator.post("/_emulator/faults", json={"latency_ms": 2000}).raise_for_status()
    settings = Settings(**{**gateway_settings, "upstream_timeout_ms": 300})
    with serve_in_thread(create_app(settings)) as url:
        started = time.monotonic()
        answer = httpx.post(f"{url}/rest/v1/mbox/s1?client=demo", json={"mbox": "home-hero"}, timeout=5)
        elapsed = time.monotonic() - started
    assert answer.status_code == 504
    assert answer.json() == {"status": 504, "message": "upstream did not answer within 300 ms"}
    assert elapsed < 1.0


def test_refused_connection_answers_502(gateway_settings: dict[str, object]) -> None:
    settings = Settings(**{**gateway_settings, "upstream": "http://127.0.0.1:9", "upstream_retries": 1})
    with serve_in_thread(create_app(settings)) as url:
        answer = httpx.post(f"{url}/rest/v1/mbox/s1?client=demo", json={"mbox": "home-hero"}, timeout=5)
    assert answer.status_code == 502
    assert answer.json()["message"] == "cannot connect to upstream"
