"""Memory stays bounded while many visitors pass through: 50,000 visitors over real sockets through a
gateway holding at most 5,000 cache entries and 5,000 sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import OPERATOR_KEY, gateway_env
from tests.servers import ServerProcess
from tests.support import Call, post_concurrently

VISITORS = 50_000
BOUND = 5_000


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def bounded_gateway(emulator_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = gateway_env(tmp_path, cache_max_entries=str(BOUND), session_max_visitors=str(BOUND), prefetch_learn="false")
    server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_url], env=env).start(expect=["gateway"])
    yield server
    server.stop()


def test_50000_visitors_through_a_5000_entry_cache(bounded_gateway: ServerProcess) -> None:
    assert bounded_gateway.process is not None
    pid = bounded_gateway.process.pid

    def visitors(start: int, count: int) -> list[Call]:
        return [
            Call("/rest/v1/mbox", {"mbox": "home-hero", "thirdPartyId": f"passing-{n}"}, {"client": "demo"})
            for n in range(start, start + count)
        ]

    half = VISITORS // 2
    answers = post_concurrently(bounded_gateway.url, visitors(0, half), concurrency=64)
    assert {a.status for a in answers} == {200}
    after_half = rss_bytes(pid)
    answers = post_concurrently(bounded_gateway.url, visitors(half, half), concurrency=64)
    assert {a.status for a in answers} == {200}
    after_all = rss_bytes(pid)

    status = httpx.get(
        f"{bounded_gateway.url}/_proxy/cache", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    ).json()
    assert status["entries"] <= BOUND
    assert status["sessions"] <= BOUND
    assert status["evictions"] >= VISITORS - BOUND
    # Once the bounds are reached, another 25,000 visitors leave the process no bigger (allocator slack aside).
    assert after_all - after_half < 8 * 1024 * 1024, (after_half, after_all)
