"""Pieces shared by the benchmarks: servers pinned to cores, and wrk runs read back as numbers.

Load generator and servers share this machine's cores, so every process is pinned with ``taskset``
and every figure is compared with a baseline measured in the same run, never with a constant.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

LISTENING = re.compile(r"target-proxy (emulator|gateway|echo) listening on (http://\S+)")
HERE = Path(__file__).resolve().parent


def cores() -> int:
    return len(os.sched_getaffinity(0))


def pinned(command: list[str], core: str | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", core, *command]


class Server:
    """A server process on a free loopback port, found from the address it prints."""

    def __init__(self, args: list[str], core: str | None, kind: str, env: dict[str, str] | None = None) -> None:
        self.command = pinned(args, core)
        self.kind = kind
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        found = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.log.append(line)
                match = LISTENING.search(line)
                if match and match.group(1) == self.kind:
                    self.url = match.group(2)
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(30) or not self.url:
            self.__exit__()
            raise RuntimeError(f"{self.command} did not start:\n{''.join(self.log)}")
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(
                    self.url + {"emulator": "/_emulator/stats", "gateway": "/healthz"}.get(self.kind, "/"),
                    timeout=1,
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def rss_bytes(self) -> int:
        """Resident memory of the server process tree (the gateway may have worker children)."""
        assert self.process is not None
        total = 0
        for pid in [self.process.pid, *children(self.process.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total


def children(pid: int) -> list[int]:
    found = []
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found.append(int(child))
            found.extend(children(int(child)))
    except OSError:
        pass
    return found


def emulator(core: str | None) -> Server:
    return Server([sys.executable, "-m", "proxy", "emulator", "--port", "0"], core, "emulator")


def echo(core: str | None) -> Server:
    """The bare Starlette echo endpoint, on uvicorn as the gateway runs (uvloop, httptools)."""
    args = [
        sys.executable,
        "-c",
        "import sys, uvicorn; from proxy.server import bind, url_of; from loadtests.echo_app import app; "
        "s = bind('127.0.0.1', 0); print('target-proxy echo listening on', url_of(s), flush=True); "
        "uvicorn.Server(uvicorn.Config(app, loop='uvloop', http='httptools', access_log=False, "
        "log_level='warning')).run(sockets=[s])",
    ]
    return Server(args, core, "echo")


def gateway(upstream: str, core: str | None, *extra: str, env: dict[str, str] | None = None) -> Server:
    args = [
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--port",
        "0",
        "--upstream",
        upstream,
        "--log-level",
        "warning",
        *extra,
    ]
    return Server(args, core, "gateway", env)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


REPORTER = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "us": %d, "errors": %d, "non_2xx": %d, "p50": %d, "p90": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def wrk(
    url: str, script: str, *, seconds: float, connections: int, threads: int = 1, core: str | None = None
) -> WrkResult:
    """Run wrk with a Lua request script; the reporter is appended to it."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + REPORTER)
        path = handle.name
    try:
        command = pinned(
            [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "5s",
                "-s",
                path,
                url,
            ],
            core,
        )
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        if run.returncode != 0:
            raise RuntimeError(f"wrk failed: {run.stderr or run.stdout}")
        output = run.stdout
    finally:
        os.unlink(path)
    line = next((ln for ln in output.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["us"] / 1e6,
        errors=data["errors"],
        non_2xx=data["non_2xx"],
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
    )


def lua_post(path: str, body_format: str) -> str:
    """A wrk script POSTing ``body_format`` (a Lua format string taking thread id and counter) to path,
    with ``%d``-style placeholders also allowed in the path."""
    return f"""
local counter = 0
local next_id = 0
setup = function(thread) thread:set("tid", next_id); next_id = next_id + 1 end
request = function()
  counter = counter + 1
  local body = string.format('{body_format}', tid, counter)
  local path = string.format('{path}', tid, counter)
  return wrk.format("POST", path, {{["Content-Type"] = "application/json"}}, body)
end
"""
