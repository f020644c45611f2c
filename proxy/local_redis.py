"""A Redis of the gateway's own for ``serve --workers N`` (N > 1) when no ``redis_url`` is set.

Workers are separate processes: each alone would keep its own sessions, so a visitor whose connections
reach two workers would get two sessions and two edges. ``serve`` therefore starts ``redis-server`` on
a unix socket beside its state (no TCP port), and the workers share sessions, cache, notifications and
budgets on it as separate gateways do. Its append-only file lives in the state directory, so what the
workers acknowledged survives a restart; it ends with the gateway (even one killed outright).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from proxy.http.server import die_with_parent
from proxy.settings import Settings

UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin


class LocalRedisError(Exception):
    """The local Redis cannot be started; the message says what to do instead."""


class LocalRedis:
    def __init__(self, settings: Settings) -> None:
        self.directory = settings.notification_store.parent / "redis"
        self.fsync = "always" if settings.notification_sync == "full" else "everysec"
        self.workers = settings.workers
        self.process: subprocess.Popen[bytes] | None = None
        self._runtime: str | None = None
        self.socket_path = self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path.absolute()}"

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalRedisError(
                f"--workers {self.workers} needs one store that all workers share, so that a visitor keeps "
                "one session and one edge: install redis-server (serve then starts one of its own on a unix "
                "socket) or set redis_url (TARGET_PROXY_REDIS_URL)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket_path.absolute())) > UNIX_PATH_MAX:
            self._runtime = tempfile.mkdtemp(prefix="target-proxy-")
            self.socket_path = Path(self._runtime) / "redis.sock"
        self.socket_path.unlink(missing_ok=True)
        command = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path.absolute()),
            "--unixsocketperm", "700",
            "--dir", str(self.directory.absolute()),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str((self.directory / "redis.log").absolute()),
        ]  # fmt: skip
        # In a session of its own: a Ctrl-C in the terminal reaches the workers, which still write to Redis as
        # they stop; Redis stops after them (and with the gateway's process, even one killed outright).
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LocalRedisError(
                    f"redis-server did not start on {self.socket_path} (see {self.directory / 'redis.log'})"
                )
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(0.5)
                client.connect(str(self.socket_path))
                client.sendall(b"PING\r\n")
                return client.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: Redis writes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
