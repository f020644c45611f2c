"""Gateways sharing their state on Redis: a redis-server of the test's own (on a free loopback port, in
the test's directory, with an append-only file so that a restart keeps what it held), and gateway
processes on the reset emulator, each with its own notification store, all on that Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import gateway_env
from tests.notifications.helpers import PREFETCH_ALL
from tests.servers import ServerProcess

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on 127.0.0.1:<port>, its files in ``directory``; stopped and started again on the
    same port and files (appendfsync always: what it acknowledged survives a restart)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_timeout=1) as client:
                    client.ping()
                return self
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "redis.log").read_text()
                    raise RuntimeError(f"redis-server did not start: {log}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: redis-server writes what it holds and exits."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not os.path.exists(REDIS_SERVER):
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


StartGateways = Callable[..., list[ServerProcess]]


@pytest.fixture
def gateways(emulator_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[StartGateways]:
    """``start(n, **settings)``: n gateway processes on the reset emulator and the test's Redis, every miss
    prefetching the demo catalog; all stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(count: int, **settings: object) -> list[ServerProcess]:
        servers = []
        for _ in range(count):
            env = gateway_env(
                tmp_path / f"gateway-{len(started)}",
                prefetch_groups=PREFETCH_ALL,
                redis_url=redis_server.url,
                redis_retry_ms="100",
                shutdown_grace_seconds="3",
                **settings,
            )
            server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_url], env=env)
            started.append(server)
            servers.append(server.start(expect=["gateway"]))
        return servers

    yield start
    for server in started:
        server.stop(timeout=15)
