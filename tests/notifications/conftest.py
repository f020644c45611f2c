"""Gateways for the notification tests: in this process with chosen settings, or as processes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import InProcessGateway, gateway_env
from tests.notifications.helpers import PREFETCH_ALL
from tests.servers import ServerProcess


@pytest.fixture
def make_gateway(gateway_settings: dict[str, object]) -> Iterator[Callable[..., InProcessGateway]]:
    """Build gateways in the test process (own store under tmp_path, every miss prefetching the demo
    catalog, notifications sent after 200 ms), served on loopback; each is shut down, draining its
    queue, when the test ends."""
    from proxy.app import create_app
    from proxy.settings import Settings
    from tests.inprocess import serve_in_thread

    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> InProcessGateway:
            settings = {
                **gateway_settings,
                "prefetch_groups": PREFETCH_ALL,
                "notification_max_delay_ms": 200,
                "shutdown_grace_seconds": 2,
                **overrides,
            }
            app = create_app(Settings(**settings))
            url = stack.enter_context(serve_in_thread(app))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=10))
            return InProcessGateway(url, client, app)

        yield make


@pytest.fixture
def gateway_processes(emulator_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``python -m proxy serve --upstream <emulator>`` processes; every one still running when the
    test ends is stopped."""
    started: list[ServerProcess] = []

    def start(state_dir: Path, **settings: object) -> ServerProcess:
        env = gateway_env(state_dir, prefetch_groups=PREFETCH_ALL, **settings)
        server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_url], env=env)
        started.append(server)
        return server.start(expect=["gateway"])

    yield start
    for server in started:
        server.stop(timeout=15)
