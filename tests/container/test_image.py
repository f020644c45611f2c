"""The container image as an operator uses it: built from the Dockerfile, run on the host's network,
checked through its health check, a miss then a hit, its user, its volume, a clean stop that sends the
waiting notifications, and a state directory it cannot write."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.container import podman
from tests.servers import ServerProcess, wait_until_answering
from tests.support import wait_for

REASON = podman.available()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""), pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def image() -> str:
    podman.build_image()
    return podman.IMAGE


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"target-proxy-test-{uuid.uuid4().hex[:8]}"
    yield name
    podman.remove(name)


@pytest.fixture
def volume() -> Iterator[str]:
    name = f"target-proxy-test-{uuid.uuid4().hex[:8]}"
    podman.podman("volume", "create", name)
    yield name
    podman.podman("volume", "rm", "--force", name, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def view(url: str, visitor: str) -> httpx.Response:
    answer = httpx.post(
        f"{url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": visitor}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer


def healthcheck(name: str) -> int:
    return podman.podman("healthcheck", "run", name, check=False).returncode


def volume_path(name: str) -> Path:
    return Path(podman.podman("volume", "inspect", name, "--format", "{{.Mountpoint}}").stdout.strip())


def test_the_image_runs_on_its_emulator_as_uid_10001_with_its_state_on_the_volume(
    image: str, container_name: str, volume: str, tmp_path: Path
) -> None:
    port, emulator_port = free_port(), free_port()
    # A config file beats the image's own defaults (port, and where the notification log goes).
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'port = {port}\nemulator_port = {emulator_port}\nnotification_store = "/var/lib/target-proxy/log"\n'
    )
    config.chmod(0o644)
    podman.run(
        container_name,
        options=["-v", f"{volume}:/var/lib/target-proxy", "-v", f"{config}:/etc/gateway.toml:ro",
                 "-e", "TARGET_PROXY_CONFIG=/etc/gateway.toml"],
    )  # fmt: skip
    gateway = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{gateway}/healthz", timeout=30)
    assert httpx.get(f"{gateway}/healthz").json() == {"status": "ok"}
    assert healthcheck(container_name) == 0, podman.logs(container_name)

    visitor = f"tv-{uuid.uuid4().hex[:8]}"
    first, second = view(gateway, visitor), view(gateway, visitor)
    assert first.json()["content"] == second.json()["content"]
    stats = httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/stats").json()
    assert stats["requests"] == {"delivery": 1}, "a miss, then a hit from the cache"

    assert podman.podman("exec", container_name, "id", "-u").stdout.strip() == "10001"
    assert podman.podman("exec", container_name, "ls", "/app").stdout.split() == [
        "README.md",
        "proxy",
        "pyproject.toml",
    ]
    state = volume_path(volume)
    assert (state / "log").is_dir() and (state / "log-salt").is_file(), sorted(p.name for p in state.iterdir())
    assert {(state / name).stat().st_uid for name in ("log", "log-salt")} == {10001}


def test_a_stop_sends_the_waiting_notifications_and_exits_0(
    image: str, container_name: str, volume: str, emulator: httpx.Client, emulator_process: ServerProcess
) -> None:
    port = free_port()
    podman.run(
        container_name,
        "serve", "--port", str(port), "--upstream", emulator_process.url,
        options=["-v", f"{volume}:/var/lib/target-proxy"],
    )  # fmt: skip
    gateway = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{gateway}/healthz", timeout=30)
    assert healthcheck(container_name) == 0, "the health check follows --port"

    visitor = f"kiosk-{uuid.uuid4().hex[:8]}"
    view(gateway, visitor)
    view(gateway, visitor)  # a hit: its display notification waits (up to 30 s) in the log
    assert emulator.get("/_emulator/stats").json()["notifications"]["display"] == 0

    started = time.monotonic()
    podman.podman("stop", "--time", "45", container_name, timeout=60)
    assert time.monotonic() - started < 30
    state = podman.podman("inspect", container_name, "--format", "{{.State.ExitCode}}").stdout.strip()
    assert state == "0", podman.logs(container_name)
    assert wait_for(lambda: emulator.get("/_emulator/stats").json()["notifications"]["display"] == 1 or None)


def test_a_state_directory_it_cannot_write_stops_it_before_it_listens(
    image: str, container_name: str, tmp_path: Path
) -> None:
    state = tmp_path / "root-owned"
    state.mkdir(mode=0o755)
    output = podman.run(
        container_name,
        "serve", "--port", str(free_port()), "--emulator-port", str(free_port()),
        options=["-v", f"{state}:/var/lib/target-proxy"],
        detach=False,
    )  # fmt: skip
    code = podman.podman("inspect", container_name, "--format", "{{.State.ExitCode}}").stdout.strip()
    assert code != "0"
    assert "cannot write the gateway's state in /var/lib/target-proxy" in output, output
    assert "uid 10001" in output
    assert "Traceback" not in output and "listening" not in output
