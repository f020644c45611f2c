"""Fixtures: the emulator and the gateway as real processes on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import ServerProcess

REPLICATION_DELAY_MS = 400


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[ServerProcess]:
    server = ServerProcess(
        ["emulator", "--port", "0", "--replication-delay-ms", str(REPLICATION_DELAY_MS)]
    ).start(expect=["emulator"])
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_process: ServerProcess) -> Iterator[httpx.Client]:
    """A client on a freshly reset emulator."""
    with httpx.Client(base_url=emulator_process.url, timeout=10) as client:
        client.post("/_emulator/reset").raise_for_status()
        yield client


@pytest.fixture(scope="session")
def gateway_process(emulator_process: ServerProcess) -> Iterator[ServerProcess]:
    server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_process.url]).start(
        expect=["gateway"]
    )
    yield server
    server.stop()


@pytest.fixture
def gateway(gateway_process: ServerProcess, emulator: httpx.Client) -> Iterator[httpx.Client]:
    """A client on the gateway, whose upstream is the (freshly reset) emulator."""
    with httpx.Client(base_url=gateway_process.url, timeout=10) as client:
        yield client
