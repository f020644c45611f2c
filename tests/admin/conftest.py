"""Gateways with management credentials (the emulator's IMS integration) and admin/activation keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.admin.support import CREDENTIALS, KEYS
from tests.gateways import OwnGateway, own_gateway
from tests.servers import ServerProcess


@pytest.fixture
def admin_settings(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    """Settings of a gateway on the reset emulator that holds the management credentials."""
    return {**gateway_settings, **CREDENTIALS, "client_keys": KEYS}


@pytest.fixture
def admin_gateway(admin_settings: dict[str, Any]) -> Iterator[OwnGateway]:
    with own_gateway(admin_settings) as gw:
        yield gw


@pytest.fixture(scope="session")
def shared_admin_gateway(
    emulator_process: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnGateway]:
    """One gateway for the tests whose calls it refuses: nothing they do spends its budget or changes it.
    (Tests that use it take the ``emulator`` fixture too, for a reset emulator to count upstream calls.)"""
    settings = {
        "upstream": emulator_process.url,
        "notification_store": tmp_path_factory.mktemp("admin-gateway") / "notifications",
        **CREDENTIALS,
        "client_keys": KEYS,
    }
    with own_gateway(settings) as gw:
        yield gw
