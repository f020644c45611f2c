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


def test_calls_refused_by_an_open_circuit_are_not_kept_in_memory(gateway_settings: dict[str, object]) -> None:
    """The circuit breaker raises one exception object while a circuit is open: each refused call must not
    leave its frames (and so its body) on that object's traceback."""
    import asyncio
    import contextlib
    import gc
    import tracemalloc

    from proxy.upstream import CircuitOpen, Upstream, UpstreamUnavailable

    settings = Settings(
        **{**gateway_settings, "upstream": "http://127.0.0.1:9", "upstream_circuit_failures": 1, "upstream_retries": 0}
    )

    async def refused_calls() -> int:
        upstream = Upstream(settings.upstream_client)
        await upstream.start()
        try:
            for _ in range(2):  # the first fails and opens the circuit
                with contextlib.suppress(UpstreamUnavailable):
                    await upstream.request("POST", "demo.tt.omtrdc.net", "/rest/v1/delivery", body=b"x" * 20_000)
            assert upstream.open_circuits == {"demo.tt.omtrdc.net"}
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(500):
                try:
                    await upstream.request("POST", "demo.tt.omtrdc.net", "/rest/v1/delivery", body=bytes(20_000))
                except CircuitOpen as refused:
                    assert refused.retry_after_s >= 1
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            return kept
        finally:
            await upstream.close()

    kept = asyncio.run(refused_calls())
    assert kept < 500 * 1000, f"{kept / 500:.0f} bytes kept per refused call"
