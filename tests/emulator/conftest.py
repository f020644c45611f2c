"""Fixtures for the emulator tests; the emulator process itself comes from ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import ServerProcess


@pytest.fixture(scope="session")
def emulator_connection(emulator_process: ServerProcess) -> Iterator[httpx.Client]:
    """One client for the whole session: building an ``httpx.Client`` costs ~25 ms (its TLS context)."""
    with httpx.Client(base_url=emulator_process.url, timeout=10) as client:
        yield client


@pytest.fixture
def emulator(emulator_connection: httpx.Client) -> httpx.Client:
    """A client on a freshly reset emulator (the shared fixture of that name, on a reused client)."""
    emulator_connection.post("/_emulator/reset").raise_for_status()
    return emulator_connection


@pytest.fixture
def emulator_url(emulator: httpx.Client, emulator_process: ServerProcess) -> str:
    """The base URL of a freshly reset emulator, for clients other than the ``emulator`` fixture."""
    return emulator_process.url
