"""Fixtures: the emulator and the gateway as real processes on loopback ports.

Clients are shared for the session (building an ``httpx.Client`` costs ~25 ms, its TLS context); the
function-scoped fixtures reset the emulator before each test.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    server = ServerProcess(
        ["emulator", "--port", "0", "--replication-delay-ms", str(REPLICATION_DELAY_MS)]
    ).start(expect=["emulator"])
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


@pytest.fixture(scope="session")
def gateway_process(emulator_process: ServerProcess) -> Iterator[ServerProcess]:
    server = ServerProcess(
        ["serve", "--port", "0", "--upstream", emulator_process.url],
        env={"TARGET_PROXY_CLIENT_KEYS": orjson.dumps(CLIENT_KEYS).decode()},
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
def fresh_target_sdk() -> Iterator[None]:
    """Adobe's Python SDK keeps the first host it was given for the whole process (its generated
    ``Configuration`` copies its first instance); forget it so each test's client goes where it says."""
    from delivery_api_client import Configuration

    Configuration.set_default(None)
    yield
    Configuration.set_default(None)
