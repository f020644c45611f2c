"""``target-proxy serve`` as a process: the emulator it starts beside the gateway ends with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
            assert server.process.returncode == 0, (
                "a stop that was asked for ends with 0: " + "".join(server.output)[-2000:]
            )
        assert emulator_gone(server.urls["emulator"]), "the emulator outlived the gateway"
    finally:
        server.stop()


def healthcheck(tmp_path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "TARGET_PROXY_NOTIFICATION_STORE": str(tmp_path / "notifications")}
    command = [sys.executable, "-m", "proxy", "healthcheck"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_healthcheck_asks_the_address_the_running_gateway_listens_on(tmp_path) -> None:
    server = ServerProcess(["serve", "--port", "0", "--emulator-port", "0"], env=gateway_env(tmp_path))
    server.start(expect=["gateway", "emulator"])
    try:
        alive = healthcheck(tmp_path)
        assert alive.returncode == 0, alive.stderr
        assert alive.stdout.strip() == f"{server.url}/healthz: ok", "the port it got, not the default 8080"
    finally:
        assert server.stop() == 0
    gone = healthcheck(tmp_path)
    assert gone.returncode == 1
    assert gone.stderr.startswith("target-proxy: no answer from http://127.0.0.1:8080/healthz"), gone.stderr


def test_a_state_directory_it_cannot_write_is_one_line_before_listening(tmp_path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    env = {"PATH": "/usr/bin:/bin", "TARGET_PROXY_NOTIFICATION_STORE": str(blocker / "notifications")}
    command = [sys.executable, "-m", "proxy", "serve", "--port", "0", "--emulator-port", "0"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"target-proxy: cannot write the gateway's state in {blocker}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_serve_decides_on_device_from_the_embedded_emulators_artifact(tmp_path) -> None:
    """The README's command: the gateway reads the emulator's artifact at Adobe's location and decides a
    kiosk's first view without asking the edge for a decision."""
    command = ["serve", "--port", "0", "--emulator-port", "0", "--decisioning-method", "on-device"]
    server = ServerProcess(command, env=gateway_env(tmp_path))
    server.start(expect=["gateway", "emulator"])
    try:
        view = {"mbox": "home-hero", "thirdPartyId": "kiosk-42"}
        answer = httpx.post(f"{server.url}/rest/v1/mbox", params={"client": "demo"}, json=view, timeout=10)
        assert answer.status_code == 200 and answer.json()["content"].startswith('<div class="hero">'), answer.text
        stats = httpx.get(f"{server.urls['emulator']}/_emulator/stats").json()
        assert stats["requests"].get("rules_artifact") == 1 and stats["decisions"] == 0
    finally:
        assert server.stop() == 0
