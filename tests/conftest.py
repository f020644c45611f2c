"""Fixtures: the emulator and the gateway as real processes on loopback ports.

Clients are shared for the session (building an ``httpx.Client`` costs ~25 ms, its TLS context); the
function-scoped fixtures reset the emulator before each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.servers import ServerProcess

REPLICATION_DELAY_MS = 400
PROFILE_KEY = "profile-key-for-tests-0001"
OPERATOR_KEY = "operator-key-for-tests-0001"
CLIENT_KEYS = {PROFILE_KEY: ["profile"], OPERATOR_KEY: ["operator"]}


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[ServerProcess]:
    server = ServerProcess(["emulator", "--port", "0", "--replication-delay-ms", str(REPLICATION_DELAY_MS)]).start(
        expect=["emulator"]
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator_connection(emulator_process: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_process.url, timeout=10) as client:
        yield client


@pytest.fixture
def emulator(emulator_connection: httpx.Client) -> httpx.Client:
    """A client on a freshly reset emulator."""
    emulator_connection.post("/_emulator/reset").raise_for_status()
    return emulator_connection


@pytest.fixture
def emulator_url(emulator: httpx.Client, emulator_process: ServerProcess) -> str:
    """The base URL of a freshly reset emulator, for clients other than the ``emulator`` fixture."""
    return emulator_process.url


def gateway_env(state_dir: Path, **settings: object) -> dict[str, str]:
    """Environment for a gateway process: test client keys, its own notification store, more settings."""
    env = {
        "TARGET_PROXY_CLIENT_KEYS": orjson.dumps(CLIENT_KEYS).decode(),
        "TARGET_PROXY_NOTIFICATION_STORE": str(state_dir / "notifications"),
    }
    for name, value in settings.items():
        env[f"TARGET_PROXY_{name.upper()}"] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return env


@pytest.fixture(scope="session")
def gateway_process(
    emulator_process: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("gateway")
    server = ServerProcess(
        ["serve", "--port", "0", "--upstream", emulator_process.url],
        # Shared by many tests: its notifications wait (rather than reach the emulator in the middle of
        # another test's counts); tests that follow notifications upstream use ``fresh_gateway``.
        env=gateway_env(state, notification_max_delay_ms="600000", shutdown_grace_seconds="1"),
    ).start(expect=["gateway"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway_connection(gateway_process: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_process.url, timeout=10) as client:
        yield client


@pytest.fixture
def gateway(gateway_connection: httpx.Client, emulator: httpx.Client) -> httpx.Client:
    """A client on the gateway, whose upstream is the (freshly reset) emulator."""
    return gateway_connection


@pytest.fixture
def gateway_settings(emulator_url: str, tmp_path: Path) -> dict[str, object]:
    """Settings for a gateway built in the test process, on the reset emulator, with its own store."""
    return {
        "upstream": emulator_url,
        "notification_store": tmp_path / "notifications",
        "client_keys": CLIENT_KEYS,
        "access_log": False,  # the test process's output is pytest's
    }


@pytest.fixture
def fresh_target_sdk() -> Iterator[None]:
    """Adobe's Python SDK keeps the first host it was given for the whole process (its generated
    ``Configuration`` copies its first instance); forget it so each test's client goes where it says."""
    from delivery_api_client import Configuration

    Configuration.set_default(None)
    yield
    Configuration.set_default(None)


@dataclass
class InProcessGateway:
    url: str
    client: httpx.Client
    app: Any

    @property
    def parts(self) -> Any:
        """The gateway's long-lived parts (sessions, cache, notification store...)."""
        return self.app.state.gateway


@pytest.fixture
def fresh_gateway(gateway_settings: dict[str, object]) -> Iterator[InProcessGateway]:
    """A gateway of its own for one test, built in the test process (so nothing another test left
    waiting in a queue reaches the emulator meanwhile), served on a loopback socket."""
    from proxy.app import create_app
    from proxy.settings import Settings
    from tests.inprocess import serve_in_thread

    app = create_app(Settings(**{**gateway_settings, "notification_max_delay_ms": 200}))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield InProcessGateway(url, client, app)
