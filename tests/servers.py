"""Starting the gateway and the emulator as real processes on loopback, for fixtures."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

LISTENING = re.compile(r"target-proxy (emulator|gateway) listening on (https?://\S+)")


class ServerProcess:
    """``python -m proxy ...`` in a child process; knows the addresses it printed."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args = [sys.executable, "-m", "proxy", *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.urls: dict[str, str] = {}
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self, expect: Sequence[str], timeout: float = 20) -> ServerProcess:
        self.urls.clear()
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        found = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                match = LISTENING.search(line)
                if match:
                    self.urls[match.group(1)] = match.group(2)
                    if all(kind in self.urls for kind in expect):
                        found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout) or not all(kind in self.urls for kind in expect):
            self.stop()
            raise RuntimeError(f"{self.args} did not start:\n{''.join(self.output)}")
        for kind, url in list(self.urls.items()):
            wait_until_answering(f"{url}/_emulator/stats" if kind == "emulator" else f"{url}/healthz")
        return self

    @property
    def url(self) -> str:
        return self.urls.get("gateway") or self.urls["emulator"]

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler runs."""
        if self.process is not None:
            self.signal(signal.SIGKILL)
            self.process.wait(10)


def wait_until_answering(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1, verify=False)  # a gateway on HTTPS has a certificate of the test's own
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def serve_as_the_readme_does(state: Path, client_keys: dict[str, list[str]]) -> ServerProcess:
    """``target-proxy serve`` on its embedded emulator with nothing but these client keys set (and its
    notification log in ``state``), started; the caller stops it."""
    env = {
        "TARGET_PROXY_CLIENT_KEYS": json.dumps(client_keys),
        "TARGET_PROXY_NOTIFICATION_STORE": str(state / "notifications"),
    }
    server = ServerProcess(["serve", "--port", "0", "--emulator-port", "0"], env=env, cwd=state)
    return server.start(expect=["gateway", "emulator"])
