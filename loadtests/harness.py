"""Pieces shared by the benchmarks: servers pinned to cores, and wrk runs read back as numbers.

Load generator and servers share this machine's cores, so every process is pinned with ``taskset``
and every figure is compared with a baseline measured in the same run, never with a constant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

LISTENING = re.compile(r"target-proxy (emulator|gateway|echo|balancer) listening on (http://\S+)")
HERE = Path(__file__).resolve().parent


def cores() -> int:
    return len(os.sched_getaffinity(0))


def pinned(command: list[str], core: str | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", core, *command]


class Server:
    """A server process on a free loopback port, found from the address it prints.

    Its output goes to a temporary file, not a pipe: a server that logs every request (the gateway's
    request log) would otherwise need this process to read it, on the load generator's core."""

    def __init__(
        self,
        args: list[str],
        core: str | None,
        kind: str,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.command = pinned(args, core)
        self.cwd = cwd  # ``python -m proxy`` runs the package found there (another tree's, say)
        self.kind = kind
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.output = Path(tempfile.mkstemp(prefix=f"target-proxy-{kind}-", suffix=".log")[1])

    @property
    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def __enter__(self) -> Server:
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                self.command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        with self.output.open("rb") as source:
            seen = b""
            while not self.url:
                seen += source.read()
                for match in LISTENING.finditer(seen.decode(errors="replace")):
                    if match.group(1) == self.kind:
                        self.url = match.group(2)
                if self.url:
                    break
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log
                    self.__exit__()
                    raise RuntimeError(f"{self.command} did not start:\n{log}")
                time.sleep(0.02)
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
        self.output.unlink(missing_ok=True)

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

    def cpu_seconds(self) -> float:
        """User and system CPU time the server's process tree has used so far."""
        assert self.process is not None
        ticks = 0
        for pid in [self.process.pid, *children(self.process.pid)]:
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(stat[11]) + int(stat[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found.append(int(child))
            found.extend(children(int(child)))
    except OSError:
        pass
    return found


def emulator(core: str | None, *extra: str, nice: bool = False) -> Server:
    """The emulator; ``nice``: at the lowest priority, so that it takes only what the others leave."""
    command = [sys.executable, "-m", "proxy", "emulator", "--port", "0", *extra]
    return Server(["nice", "-n", "19", *command] if nice else command, core, "emulator")


def echo(core: str | None) -> Server:
    """The bare Starlette echo endpoint, on uvicorn as the gateway runs (uvloop, httptools)."""
    args = [
        sys.executable,
        "-c",
        "import sys, uvicorn; from proxy.http.server import bind, url_of; from loadtests.echo_app import app; "
        "s = bind('127.0.0.1', 0); print('target-proxy echo listening on', url_of(s), flush=True); "
        "uvicorn.Server(uvicorn.Config(app, loop='uvloop', http='httptools', access_log=False, "
        "log_level='warning')).run(sockets=[s])",
    ]
    return Server(args, core, "echo")


def gateway(
    upstream: str, core: str | None, *extra: str, env: dict[str, str] | None = None, cwd: str | Path | None = None
) -> Server:
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
    return Server(args, core, "gateway", env, cwd)


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


def lua_post(path: str, body_format: str, args: tuple[str, ...] = ("tid", "counter"), prelude: str = "") -> str:
    """A wrk script POSTing ``body_format`` (a Lua format string) to path, with ``%d``-style placeholders
    also allowed in the path. Both are formatted with ``args``, Lua expressions over the thread id
    ``tid`` and the per-thread request ``counter`` (1, 2, ...), after ``prelude`` (Lua declarations)."""
    values = ", ".join(args)
    return f"""
{prelude}
local counter = 0
local next_id = 0
setup = function(thread) thread:set("tid", next_id); next_id = next_id + 1 end
request = function()
  counter = counter + 1
  local body = string.format('{body_format}', {values})
  local path = string.format('{path}', {values})
  return wrk.format("POST", path, {{["Content-Type"] = "application/json"}}, body)
end
"""


# --- the gateway answering from memory -----------------------------------------------------------

# Every miss of client "demo" prefetches these (the demo catalog's mboxes that have activities).
PREFETCH_GROUP = (
    "home-hero",
    "home-banner",
    "product-reco",
    "kiosk-welcome",
    "tv-rail-1",
    "tv-rail-2",
    "checkout-promo",
)
OPERATOR_KEY = "loadtests-operator-key"
SINGLE_MBOX_PATH = "/rest/v1/mbox?client=demo"
# Where reports go: loadtests/results, or TARGET_PROXY_BENCH_RESULTS (the smoke test uses a temp directory).
RESULTS = Path(os.environ.get("TARGET_PROXY_BENCH_RESULTS") or HERE / "results")


def gateway_env(directory: str | Path, **settings: object) -> dict[str, str]:
    """Settings for a gateway that prefetches ``PREFETCH_GROUP``, keeps its notification store in
    ``directory`` and lets ``OPERATOR_KEY`` read /_proxy/*; ``settings`` add TARGET_PROXY_* values."""
    env = {
        "TARGET_PROXY_PREFETCH_GROUPS": json.dumps({"demo": list(PREFETCH_GROUP)}),
        "TARGET_PROXY_CLIENT_KEYS": json.dumps({OPERATOR_KEY: ["operator"]}),
        "TARGET_PROXY_NOTIFICATION_STORE": str(Path(directory) / "notifications"),
    }
    for name, value in settings.items():
        env[f"TARGET_PROXY_{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return env


def operator(gateway: Server, what: str) -> dict[str, object]:
    """``GET /_proxy/<what>`` (cache or queue) with the operator key."""
    response = httpx.get(f"{gateway.url}/_proxy/{what}", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    response.raise_for_status()
    return dict(response.json())


def emulator_stats(emulator: Server) -> dict[str, object]:
    response = httpx.get(f"{emulator.url}/_emulator/stats")
    response.raise_for_status()
    return dict(response.json())


def drain(gateway: Server, within: float) -> dict[str, object]:
    """Wait until the gateway's notification queue is empty (or ``within`` seconds pass); its counters."""
    deadline = time.monotonic() + within
    while True:
        queue = operator(gateway, "queue")
        if queue["depth"] == 0 or time.monotonic() > deadline:
            return queue
        time.sleep(0.25)


def pin_self(core: str) -> None:
    """Keep this process (the benchmark's own client work) on ``core``, away from the server measured."""
    if int(core) < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {int(core)})


@dataclass
class Budget:
    """One budget line: what was measured against what it may be."""

    name: str
    measured: float
    budget: float
    at_least: bool  # True: measured >= budget passes; False: measured <= budget passes
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.measured >= self.budget if self.at_least else self.measured <= self.budget

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        return (
            f"{self.name}: {self.measured:g}{self.unit} / budget {sign} {self.budget:g}{self.unit} / "
            f"{'PASS' if self.passed else 'SHORT'}"
        )


def cpu_seconds() -> tuple[float, float, float]:
    """CPU seconds the machine's processes used and the hypervisor stole, and this process's own with its
    reaped children. (Interrupt time is left out: loopback traffic is counted there, not to a process.)"""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    own = sum(os.times()[:4])
    return (user + nice + system) / tick, steal / tick, own


STARTED = (time.monotonic(), *cpu_seconds())


def other_load() -> dict[str, float]:
    """Cores kept busy, on average since this module was loaded, by processes other than this benchmark
    and the servers and load generators it started and reaped (call it after they have exited), and
    cores stolen by the hypervisor. Other work on the machine skews every figure, ratios included."""
    began, busy, steal, own = STARTED
    now_busy, now_steal, now_own = cpu_seconds()
    elapsed = max(time.monotonic() - began, 1e-9)
    return {
        "other_cores": round(max(0.0, (now_busy - busy) - (now_own - own)) / elapsed, 3),
        "stolen_cores": round((now_steal - steal) / elapsed, 3),
    }


def report(name: str, budgets: list[Budget], figures: dict[str, object]) -> Path:
    """Print one line per budget and write everything to loadtests/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = other_load()
    document = {
        "benchmark": name,
        "budgets": [{**asdict(b), "passed": b.passed} for b in budgets],
        "pass": all(b.passed for b in budgets),
        "machine": machine,
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    for budget in budgets:
        print(budget.line())
    if machine["other_cores"] > 0.1 or machine["stolen_cores"] > 0.1:
        print(
            f"note: other processes kept {machine['other_cores']} cores busy on average and the hypervisor stole "
            f"{machine['stolen_cores']}: the figures are skewed, run again on a quiet machine"
        )
    print(f"results: {path}")
    return path


def scaling_cli(doc: str | None, measure: Callable[[int, float, int], object]) -> None:
    """The command line of the scaling benchmarks (workers, instances): ``measure(visitors, seconds,
    connections)``, or a few seconds of it with ``--quick``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a few seconds: a smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        measure(50, 1, 8)
    else:
        measure(args.visitors, args.seconds, args.connections)
