"""``target-proxy serve`` as a process: the emulator it starts beside the gateway ends with it."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.conftest import gateway_env
from tests.servers import ServerProcess


def emulator_gone(url: str, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_emulator/stats", timeout=1)
        except httpx.TransportError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_embedded_emulator_ends_with_the_gateway(tmp_path, signum: int) -> None:
    server = ServerProcess(["serve", "--port", "0", "--emulator-port", "0"], env=gateway_env(tmp_path))
    server.start(expect=["gateway", "emulator"])
    try:
        assert httpx.get(f"{server.urls['emulator']}/_emulator/stats").status_code == 200
        assert server.process is not None
        os.kill(server.process.pid, signum)  # the gateway's process only, as a container runtime does
        server.process.wait(30)
        if signum == signal.SIGTERM:
            assert server.process.returncode == 128 + signal.SIGTERM, "".join(server.output)[-2000:]
        assert emulator_gone(server.urls["emulator"]), "the emulator outlived the gateway"
    finally:
        server.stop()
