"""The gateway as the README starts it, on its embedded emulator, for Adobe's Node.js clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import gateway_env
from tests.servers import ServerProcess


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    # README defaults, but notifications sent within a fraction of a second, so the test sees them arrive.
    env = gateway_env(tmp_path, notification_max_delay_ms="200")
    server = ServerProcess(["serve", "--port", "0", "--emulator-port", "0"], env=env).start(
        expect=["gateway", "emulator"]
    )
    yield server
    server.stop()
