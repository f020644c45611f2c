"""Soak: the gateway for ten minutes at 80% of its measured capacity while the edge fails every minute.

    python -m loadtests.soak [--duration 600] [--fault-every 60] [--fault-seconds 5] [--capacity-seconds 10]
                             [--load 0.8] [--regulars 2000] [--new-every 20] [--faults latency,errors,...]

The emulator and one gateway run as processes (gateway on core 0; emulator, wrk and this process on core 1).
The traffic is single mbox views: every ``--new-every``-th comes from a visitor never seen before (a miss: one
upstream call that prefetches the seven mboxes of ``harness.PREFETCH_GROUP``), the others from ``--regulars``
visitors in rotation, warmed first, each viewing its prefetched mboxes in turn (cache hits, each queueing one
display notification). The gateway's cache and session bounds are set small enough for the new
visitors to reach them within the first minutes, so the run spends most of its time evicting.

1. Capacity: wrk on that mix for ``--capacity-seconds``, after a warm-up a second longer than the gateway's
   ``notification_max_delay_ms`` (at least a third as long as the measurement), so that partial batches of
   notifications are going out and their cost is part of what is measured.
2. Load: ``loadgen``'s open loop (each request due at its own time, whatever the answers do; latency counted
   from that time), sending each millisecond what fell due in it, at ``--load`` times that capacity for
   ``--duration`` seconds, and classifying every answer as it arrives.
3. Faults: from half a period in, every ``--fault-every`` seconds one fault of the rotation is set on the
   emulator (``/_emulator/faults``) for ``--fault-seconds``, then cleared: a latency spike above the gateway's
   upstream timeout, a burst of 500s, an outage, 429 and 503 with Retry-After, connection resets, slow bodies.
   A fault's window runs from just before it is set to just after it is cleared, plus a grace of the
   circuit's reset time, the upstream timeout and a second (a circuit opened by the last failures
   stays open that long). An answer whose request was in flight during a window may be 200 (cached or default
   content) or one of the error statuses that fault leads to, as the gateway's JSON error; every other answer
   must be 200 with content. Anything else, a lost connection or a request left unanswered is an unexpected
   error.
4. Hostile clients, beside the load on their own connections (``loadtests/hostile.py``): every
   ``--hostile-every`` seconds a request of ``--hostile-notifications`` made-up notifications from a new
   visitor, and a connection that lingers after its answer sending bytes that start no request.
5. Drain: the faults cleared, the notification queue is left to empty, then the counts are compared.

Budgets:
- unexpected errors: 0;
- every display counted: the edge counted exactly as many display notifications as the gateway queued (it
  counts a notification id once: a re-sent one is reported as a duplicate, never counted twice), none is
  left in the queue or dead-lettered, and every view answered with content is counted upstream (those not
  answered from the cache as the miss's own impression);
- hostile clients: every made-up notification acknowledged (200) and dead-lettered exactly once, at no
  more upstream calls than the gateway's refusal budget allows over the run; every lingering connection
  closed within ``header_timeout_seconds`` (and 2 s) of its answer;
- memory: the gateway's RSS, sampled every second, stays under a bound derived from its own bounds (idle
  RSS + 1.5 KB per cache entry, 1 KB per session and per queued notification, 64 MB for the rest), and grows
  by at most ``--growth-budget-mb`` over the last ``--growth-window`` seconds (it plateaus);
- the generator kept the rate: at least 95% of the requests/s asked for.

Results: loadtests/results/soak.json, a table, and a paragraph for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import uvloop

from loadtests import harness, hostile, loadgen
from loadtests.harness import Budget

MB = 1024 * 1024
BODY = '{"mbox":"%s","thirdPartyId":"%s"}'
GROUP = harness.PREFETCH_GROUP
DEFAULT_MBOX = "checkout-promo"
DEFAULT_CONTENT = "<p>soak: default content</p>"
DEFAULT_MARK = DEFAULT_CONTENT.encode()
# What the RSS bound allows per unit of each of the gateway's bounds: DESIGN.md's 1.5 KB per cached entry; a
# session and a waiting notification take about 0.7 and 1 KB of Python objects (tracemalloc).
ENTRY_BYTES = 1536
SESSION_BYTES = 1024
NOTIFICATION_BYTES = 1024
OTHER_BYTES = 64 * MB
ANSWER_WAIT_S = 30.0  # how long the last requests may take once the load has been sent


@dataclass(frozen=True)
class Fault:
    key: str
    name: str
    control: dict[str, object]  # the body of POST /_emulator/faults
    statuses: frozenset[int]  # what the gateway may answer besides 200 while it lasts


def rotation(timeout_ms: int) -> list[Fault]:
    """Every fault the emulator can inject; a circuit opened by it answers 503 meanwhile."""
    return [
        Fault("latency", "latency spike", {"latency_ms": 3 * timeout_ms}, frozenset({503, 504})),
        Fault("errors", "5xx burst", {"status": 500, "error_rate": 0.5}, frozenset({502, 503})),
        Fault("outage", "outage", {"outage": True}, frozenset({502, 503})),
        Fault("429", "429 with Retry-After", {"status": 429, "retry_after": 2}, frozenset({429})),
        Fault("resets", "connection resets", {"reset_rate": 0.5}, frozenset({502, 503})),
        Fault("503", "503 with Retry-After", {"status": 503, "retry_after": 3}, frozenset({503})),
        # 64-byte chunks this far apart: any answer of more than a few hundred bytes misses the timeout.
        Fault("slow-bodies", "slow bodies", {"slow_body_ms": timeout_ms / 4}, frozenset({503, 504})),
    ]


@dataclass(frozen=True)
class SoakSettings:
    duration: float = field(default=600.0, metadata={"help": "seconds of load at the fixed rate"})
    fault_every: float = field(default=60.0, metadata={"help": "seconds between the starts of two faults"})
    fault_seconds: float = field(default=5.0, metadata={"help": "how long each fault is held"})
    faults: str = field(default="latency,errors,outage,429,resets,503,slow-bodies", metadata={"help": "rotation"})
    capacity_seconds: float = field(default=10.0, metadata={"help": "wrk run that measures capacity"})
    load: float = field(default=0.8, metadata={"help": "fixed rate, as a share of the measured capacity"})
    regulars: int = field(default=2000, metadata={"help": "visitors in rotation, answered from the cache"})
    new_every: int = field(default=20, metadata={"help": "every n-th view is a new visitor's (a miss)"})
    connections: int = field(default=128, metadata={"help": "connections of the generator (and 32 for wrk)"})
    upstream_timeout_ms: int = 1000
    circuit_failures: int = 5
    circuit_reset_seconds: float = 5.0
    cache_max_entries: int = 20_000
    cache_max_bytes: int = 16 * MB
    session_max_visitors: int = 20_000
    notification_max_backlog: int = 200_000  # the gateway's default
    notification_max_delay_ms: int = 30_000  # the gateway's default
    notification_retry_cap_ms: int = 10_000
    header_timeout_seconds: float = 10.0  # the gateway's default
    notification_refusal_calls_per_minute: int = 120  # the gateway's default
    hostile_every: float = field(
        default=1.0, metadata={"help": "seconds between two hostile requests, and two lingering connections"}
    )
    hostile_notifications: int = field(default=20, metadata={"help": "made-up notifications per hostile request"})
    growth_window: float = field(default=60.0, metadata={"help": "seconds over which RSS growth is measured"})
    growth_budget_mb: float = field(default=8.0, metadata={"help": "RSS growth allowed over that window"})

    @property
    def grace(self) -> float:
        """How long after a fault the gateway may still answer for it: a call sent as it was cleared fails a
        timeout later, and may be the failure that opens the circuit for its reset time; a second of slack."""
        return self.circuit_reset_seconds + self.upstream_timeout_ms / 1000 + 1.0

    def fault_plan(self) -> list[tuple[float, Fault]]:
        """(seconds into the load, fault): from half a period in, each window over before the load ends."""
        known = {fault.key: fault for fault in rotation(self.upstream_timeout_ms)}
        chosen = [known[key.strip()] for key in self.faults.split(",") if key.strip()]
        plan: list[tuple[float, Fault]] = []
        at = self.fault_every / 2
        while chosen and at + self.fault_seconds + self.grace <= self.duration:
            plan.append((at, chosen[len(plan) % len(chosen)]))
            at += self.fault_every
        return plan

    def gateway_settings(self) -> dict[str, object]:
        return {
            "upstream_timeout_ms": self.upstream_timeout_ms,
            "upstream_circuit_failures": self.circuit_failures,
            "upstream_circuit_reset_seconds": self.circuit_reset_seconds,
            "cache_max_entries": self.cache_max_entries,
            "cache_max_bytes": self.cache_max_bytes,
            "session_max_visitors": self.session_max_visitors,
            "notification_max_backlog": self.notification_max_backlog,
            "notification_max_delay_ms": self.notification_max_delay_ms,
            "notification_retry_base_ms": 250,
            "notification_retry_cap_ms": self.notification_retry_cap_ms,
            "default_content": {DEFAULT_MBOX: DEFAULT_CONTENT},
            "header_timeout_seconds": self.header_timeout_seconds,
            "notification_refusal_calls_per_minute": self.notification_refusal_calls_per_minute,
        }

    def rss_bound(self, idle: int) -> int:
        return (
            idle
            + self.cache_max_entries * ENTRY_BYTES
            + self.session_max_visitors * SESSION_BYTES
            + self.notification_max_backlog * NOTIFICATION_BYTES
            + OTHER_BYTES
        )


# --- the traffic ------------------------------------------------------------------------------------------


def pick(n: int, regulars: int, new_every: int, prefix: str) -> tuple[str, str]:
    """(mbox, visitor) of view ``n``: a new visitor every ``new_every``-th, else the regulars in rotation."""
    if n % new_every == 0:
        return GROUP[(n // new_every) % len(GROUP)], f"{prefix}-new-{n}"
    j = n - n // new_every - 1
    return GROUP[(j // regulars) % len(GROUP)], f"regular-{j % regulars}"


def wrk_script(regulars: int, new_every: int, prefix: str) -> str:
    """``pick`` in Lua (wrk's counter starts at 1)."""
    names = ", ".join(f'"{name}"' for name in GROUP)
    prelude = f"""
local MBOXES = {{{names}}}
local function pick(n)
  if n % {new_every} == 0 then
    return MBOXES[math.floor(n / {new_every}) % #MBOXES + 1], string.format("{prefix}-new-%d", n)
  end
  local j = n - math.floor(n / {new_every}) - 1
  return MBOXES[math.floor(j / {regulars}) % #MBOXES + 1], string.format("regular-%d", j % {regulars})
end
"""
    return harness.lua_post(harness.SINGLE_MBOX_PATH, BODY, ("pick(counter)",), prelude)


def view(url: str, mbox: str, visitor: str) -> bytes:
    return loadgen.post(url, harness.SINGLE_MBOX_PATH, (BODY % (mbox, visitor)).encode())


def warm(gateway: harness.Server, regulars: int) -> None:
    """One miss per regular visitor: its session, and its prefetched mboxes in the cache."""
    requests = [view(gateway.url, GROUP[v % len(GROUP)], f"regular-{v}") for v in range(regulars)]
    failed = [status for status, _ in uvloop.run(loadgen.send_all(gateway.url, requests)) if status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} warm-up views failed, e.g. HTTP {failed[0]}")


# --- classifying answers ----------------------------------------------------------------------------------


class Latencies:
    """A histogram with buckets 2% wide: a soak answers millions of requests, too many to keep a list of."""

    STEP = math.log(1.02)

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.buckets[math.floor(math.log(max(ms, 0.001)) / self.STEP)] += 1
        self.count += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, pct: float) -> float:
        wanted, seen = self.count * pct / 100, 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= wanted:
                return round(math.exp((bucket + 1) * self.STEP), 3)
        return 0.0

    def summary(self) -> dict[str, float]:
        figures = {f"p{pct:g}_ms": self.percentile(pct) for pct in (50, 99, 99.9)}
        return {"answers": self.count, **figures, "max_ms": round(self.max_ms, 3)}


@dataclass
class Window:
    fault: Fault
    started: float  # perf_counter, just before the fault was set
    ended: float = math.inf  # just after it was cleared
    statuses: Counter[int] = field(default_factory=Counter)
    defaults: int = 0


class Tally:
    """Every answer of the load, classified as it arrives against the fault windows."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.windows: list[Window] = []
        self.steady: Counter[int] = Counter()
        self.content = 0  # 200 with content: a display
        self.defaults = 0  # 200 with the configured default content
        self.unexpected: Counter[str] = Counter()
        self.examples: list[str] = []
        self.latency = {"steady": Latencies(), "fault windows": Latencies()}
        self.origin = 0.0  # perf_counter when the load started
        self.by_second: dict[int, list[float]] = {}  # second of the load -> [answers, slowest ms]

    def window_of(self, sent: float, answered: float) -> Window | None:
        # Windows are far apart, and the latest one started before any answer that arrives after it.
        if not self.windows:
            return None
        latest = self.windows[-1]
        return latest if latest.started <= answered and sent <= latest.ended + self.grace else None

    def answer(self, sent: float, answered: float, status: int, body: bytes, latency_ms: float) -> None:
        window = self.window_of(sent, answered)
        self.latency["steady" if window is None else "fault windows"].add(latency_ms)
        second = self.by_second.setdefault(int(answered - self.origin), [0, 0.0])
        second[0] += 1
        second[1] = max(second[1], latency_ms)
        if window is None:
            self.steady[status] += 1
        else:
            window.statuses[status] += 1
        if status == 200:
            if DEFAULT_MARK not in body:
                self.content += 1
                return
            self.defaults += 1
            if window is not None:
                window.defaults += 1
                return
            self.fail("default content outside a fault window", sent, body)
        elif window is None:
            self.fail(f"HTTP {status} outside a fault window", sent, body)
        elif status not in window.fault.statuses:
            self.fail(f"HTTP {status} during {window.fault.name}", sent, body)
        elif not body.startswith(b'{"status":%d,"message":' % status):
            self.fail(f"HTTP {status} without the JSON error during {window.fault.name}", sent, body)

    def fail(self, what: str, sent: float, body: bytes = b"") -> None:
        self.unexpected[what] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{what} (sent at {sent - self.origin:.3f} s): {body[:160]!r}")


# --- the load ---------------------------------------------------------------------------------------------


class Connection(loadgen.Connection):
    """loadgen's connection, also remembering when its request went out; losing it is counted, not fatal."""

    def __init__(self, load: Load) -> None:
        super().__init__(load.answered, load.finished)
        self.load = load
        self.sent_at = 0.0
        self.busy = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.lost(self, exc)


class Load:
    """``loadgen.fixed_rate``'s open loop (see its module doc), to the millisecond, handing every answer to a
    Tally."""

    def __init__(self, url: str, make: Callable[[int], bytes], rate: float, seconds: float, tally: Tally) -> None:
        self.url = url
        self.make = make
        self.rate = rate
        self.seconds = seconds
        self.total = max(1, round(rate * seconds))
        self.tally = tally
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.began = asyncio.Event()
        # First in, first out: every connection is used in turn, so none sits idle long enough for the server's
        # keep-alive timeout to close it just as a request goes out on it.
        self.free: deque[Connection] = deque()
        self.connections: list[Connection] = []
        self.reopening: set[asyncio.Task[None]] = set()
        self.issued = self.settled = 0
        self.start = 0.0
        self.timer: asyncio.Handle | None = None
        self.lags = Latencies()
        self.idle_closed = 0
        self.closing = False

    async def open(self) -> None:
        parts = urlsplit(self.url)
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: Connection(self), parts.hostname, parts.port
        )
        connection.free_since = time.perf_counter()
        self.connections.append(connection)
        self.free.append(connection)
        self.pump()

    async def run(self, connections: int) -> float:
        """Send the load; the seconds it took until the last answer."""
        for _ in range(connections):
            await self.open()
        self.start = self.tally.origin = time.perf_counter() + 0.01
        for connection in self.free:
            connection.free_since = self.start
        self.began.set()
        self.pump()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.finished), self.seconds + ANSWER_WAIT_S)
        elapsed = time.perf_counter() - self.start
        self.closing = True
        if self.total > self.settled:
            self.tally.unexpected["request never answered"] += self.total - self.settled
        return elapsed

    def pump(self) -> None:
        if not self.began.is_set():
            return
        now = time.perf_counter()
        while self.free and self.issued < self.total:
            due = self.start + self.issued / self.rate
            if due > now:
                break
            connection = self.free.popleft()
            lag = now - max(due, connection.free_since)  # late although a connection was free: the client's lag
            self.lags.add(lag * 1000)
            connection.due, connection.sent_at, connection.busy = due + lag, now, True
            connection.send(self.make(self.issued))
            self.issued += 1
        if self.issued < self.total and self.free and self.timer is None:
            # Whole milliseconds, unlike loadgen's polling: requests go out in batches a millisecond apart, and
            # this process leaves most of its core to the emulator that shares it.
            wait = self.start + self.issued / self.rate - now
            self.timer = asyncio.get_running_loop().call_later(max(wait, 0.001), self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        self.pump()

    def answered(self, connection: loadgen.Connection, status: int, body: bytes, at: float) -> None:
        mine = cast(Connection, connection)
        mine.busy = False
        self.tally.answer(mine.sent_at, at, status, body, (at - mine.due) * 1000)
        mine.free_since = at
        self.free.append(mine)
        self.settle()

    def settle(self) -> None:
        self.settled += 1
        if self.settled >= self.total and not self.finished.done():
            self.finished.set_result(None)
        else:
            self.pump()

    def lost(self, connection: Connection, exc: Exception | None) -> None:
        if self.closing:
            return
        if connection in self.free:
            self.free.remove(connection)
        if connection.busy:
            connection.busy = False
            self.tally.fail(f"connection lost with a request in flight ({exc})", connection.sent_at)
            self.settle()
        else:
            self.idle_closed += 1
        task = asyncio.get_running_loop().create_task(self.open())
        self.reopening.add(task)
        task.add_done_callback(self.reopening.discard)

    def close(self) -> None:
        self.closing = True
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()


# --- faults and samples, beside the load ------------------------------------------------------------------


def control_client(base_url: str, **options: Any) -> httpx.AsyncClient:
    """A client that opens a connection per call: a kept-alive one idle as long as the server's keep-alive
    timeout (uvicorn's 5 s, a fault's hold) may be closed by the server just as a call goes out on it."""
    return httpx.AsyncClient(base_url=base_url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0), **options)


async def set_faults(client: httpx.AsyncClient, control: dict[str, object]) -> None:
    (await client.post("/_emulator/faults", json=control)).raise_for_status()


async def inject(emulator: str, plan: list[tuple[float, Fault]], hold: float, load: Load, tally: Tally) -> None:
    await load.began.wait()
    async with control_client(emulator) as client:
        for at, fault in plan:
            await asyncio.sleep(max(0.0, load.start + at - time.perf_counter()))
            window = Window(fault, time.perf_counter())
            tally.windows.append(window)
            await set_faults(client, fault.control)
            await asyncio.sleep(hold)
            await set_faults(client, {})
            window.ended = time.perf_counter()


@dataclass
class Sample:
    at: float  # seconds into the load
    rss: int
    depth: int
    entries: int
    sessions: int


async def sample_every_second(gateway: harness.Server, load: Load, samples: list[Sample], tally: Tally) -> None:
    await load.began.wait()
    async with control_client(gateway.url, headers={"Authorization": f"Bearer {harness.OPERATOR_KEY}"}) as client:
        while True:
            try:
                queue, cache = (await client.get("/_proxy/queue")).json(), (await client.get("/_proxy/cache")).json()
            except httpx.HTTPError as exc:  # the gateway failed an operator's call: an error like any other
                tally.fail(f"GET /_proxy/queue or /_proxy/cache failed ({type(exc).__name__})", time.perf_counter())
            else:
                at = time.perf_counter() - load.start
                samples.append(Sample(at, gateway.rss_bytes(), queue["depth"], cache["entries"], cache["sessions"]))
            await asyncio.sleep(1.0)


@dataclass
class Driven:
    seconds: float
    sent: int
    lags: Latencies
    idle_closed: int
    samples: list[Sample]
    hostile: hostile.HostileTally


async def drive(
    gateway: harness.Server, emulator: harness.Server, settings: SoakSettings, rate: float, tally: Tally
) -> Driven:
    def make(n: int) -> bytes:
        return view(gateway.url, *pick(n, settings.regulars, settings.new_every, "soak"))

    load = Load(gateway.url, make, rate, settings.duration, tally)
    samples: list[Sample] = []
    sampler = asyncio.create_task(sample_every_second(gateway, load, samples, tally))
    injector = asyncio.create_task(inject(emulator.url, settings.fault_plan(), settings.fault_seconds, load, tally))
    hostiles, stop_hostiles = hostile.HostileTally(), asyncio.Event()
    hostile_clients = [
        hostile.made_up_notifications(
            gateway.url, settings.hostile_every, settings.hostile_notifications, stop_hostiles, hostiles
        ),
        hostile.lingering_connections(
            gateway.url, settings.hostile_every, settings.header_timeout_seconds, stop_hostiles, hostiles
        ),
    ]
    hostile_task = asyncio.ensure_future(asyncio.gather(*hostile_clients)) if settings.hostile_every > 0 else None
    try:
        seconds = await load.run(settings.connections)
        await injector  # already done: every window ends before the load does
    finally:
        stop_hostiles.set()
        if hostile_task is not None:
            await hostile_task  # the lingering connections end by themselves, closed or given up on
        load.close()
        sampler.cancel()
        injector.cancel()
        await asyncio.gather(sampler, injector, return_exceptions=True)  # an injector's failure is raised above
        async with control_client(emulator.url) as client:  # whatever happened, the edge is well again
            await set_faults(client, {})
    return Driven(seconds, load.issued, load.lags, load.idle_closed, samples, hostiles)


# --- the run ----------------------------------------------------------------------------------------------


def idle_rss(server: harness.Server) -> int:
    readings = []
    for _ in range(5):
        readings.append(server.rss_bytes())
        time.sleep(0.1)
    return int(statistics.median(readings))


def snapshot(gateway: harness.Server, emulator: harness.Server) -> dict[str, Any]:
    return {
        "cache": harness.operator(gateway, "cache"),
        "queue": harness.operator(gateway, "queue"),
        "emulator": harness.emulator_stats(emulator),
    }


def measure_capacity(gateway: harness.Server, settings: SoakSettings) -> harness.WrkResult:
    """wrk at saturation on the mix, once partial batches of notifications have started to go out (they are
    part of what every view costs)."""
    warmup = max(settings.capacity_seconds / 3, settings.notification_max_delay_ms / 1000 + 1)
    regulars, every = settings.regulars, settings.new_every
    harness.wrk(gateway.url, wrk_script(regulars, every, "warmup"), seconds=warmup, connections=32, core="1")
    script = wrk_script(regulars, every, "capacity")
    return harness.wrk(gateway.url, script, seconds=settings.capacity_seconds, connections=32, core="1")


@dataclass
class Observed:
    """What the soak saw of the processes, besides the answers."""

    capacity: harness.WrkResult
    rate: float
    driven: Driven
    idle_rss: int
    final_rss: int
    before: dict[str, Any]
    after: dict[str, Any]
    drain_seconds: float
    cores: dict[str, float]  # CPU cores each server kept busy during the load
    dead_letters: Counter[str]  # made_up, made_up_distinct, other


def soak(settings: SoakSettings) -> Path:
    directory = tempfile.mkdtemp(prefix="target-proxy-soak-")
    tally = Tally(settings.grace)
    try:
        env = harness.gateway_env(directory, **settings.gateway_settings())
        with (
            harness.emulator(core="1") as emulator,
            harness.gateway(emulator.url, "0", env=env) as gateway,
        ):
            observed = phases(gateway, emulator, settings, tally, Path(directory) / "notifications")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return evaluate(settings, tally, observed)


def read_dead_letters(path: Path) -> Counter[str]:
    letters = [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
    ids = [letter["notification"].get("id", "") for letter in letters]
    made_up = [i for i in ids if i.startswith(hostile.MADE_UP_PREFIX)]
    return Counter(made_up=len(made_up), made_up_distinct=len(set(made_up)), other=len(ids) - len(made_up))


def phases(
    gateway: harness.Server, emulator: harness.Server, settings: SoakSettings, tally: Tally, store: Path
) -> Observed:
    """Warm-up, capacity, load with faults, drain; then what the gateway's store dead-lettered."""
    idle = idle_rss(gateway)
    warm(gateway, settings.regulars)
    capacity = measure_capacity(gateway, settings)
    rate = settings.load * capacity.rps
    print(f"capacity {capacity.rps:.0f} req/s; soak at {rate:.0f} req/s for {settings.duration:.0f} s")
    before = snapshot(gateway, emulator)
    servers = (gateway, emulator)
    cpu, own = [server.cpu_seconds() for server in servers], time.process_time()
    driven = uvloop.run(drive(gateway, emulator, settings, rate, tally))
    cores = {s.kind: round((s.cpu_seconds() - used) / driven.seconds, 2) for s, used in zip(servers, cpu, strict=True)}
    cores["load generator"] = round((time.process_time() - own) / driven.seconds, 2)
    started = time.monotonic()
    harness.drain(gateway, within=(settings.notification_max_delay_ms + settings.notification_retry_cap_ms) / 1000 + 30)
    drained = time.monotonic() - started
    after = snapshot(gateway, emulator)
    letters = read_dead_letters(store / "dead-letters.jsonl")
    return Observed(capacity, rate, driven, idle, gateway.rss_bytes(), before, after, drained, cores, letters)


def growth(samples: list[Sample], window: float) -> float:
    """Highest RSS of the last ``window`` seconds less the highest of the ``window`` before (bytes)."""
    end = samples[-1].at
    last = [s.rss for s in samples if s.at > end - window]
    before = [s.rss for s in samples if end - 2 * window < s.at <= end - window]
    return float(max(last) - max(before)) if last and before else 0.0


def slope_mb_per_minute(samples: list[Sample]) -> float:
    """Least-squares RSS trend over the second half of the load."""
    half = [s for s in samples if s.at >= samples[-1].at / 2]
    if len(half) < 2:
        return 0.0
    return statistics.linear_regression([s.at for s in half], [s.rss for s in half]).slope * 60 / MB


def display_figures(tally: Tally, seen: Observed) -> dict[str, int]:
    before, after = seen.before, seen.after
    # What the gateway accepted, less the hostile client's made-up notifications (never counted upstream).
    made_up = seen.driven.hostile.acknowledged
    queued_total = int(after["queue"]["accepted"]) - made_up
    counted_total = int(after["emulator"]["notifications"]["display"])
    queued = queued_total - int(before["queue"]["accepted"])
    counted = counted_total - int(before["emulator"]["notifications"]["display"])
    # One impression per display notification: what is left is the misses' own impressions upstream.
    executed = int(after["emulator"]["impressions"]) - int(before["emulator"]["impressions"]) - counted
    from_upstream = tally.content - queued  # views answered with content that were not answered from the cache
    return {
        "queued_during_the_soak": queued,
        "counted_during_the_soak": counted,
        "queued_total": queued_total,
        "counted_total": counted_total,
        "duplicates_absorbed_by_the_edge": int(after["emulator"]["notifications"]["duplicates"]),
        "views_answered_from_upstream": from_upstream,
        "impressions_of_misses": executed,
        "executions_the_gateway_gave_up_on": executed - from_upstream,
    }


def hostile_figures(settings: SoakSettings, seen: Observed) -> dict[str, Any]:
    tally, letters = seen.driven.hostile, seen.dead_letters
    minutes = math.ceil((seen.driven.seconds + seen.drain_seconds) / 60) + 1  # a moving window of a minute
    return {
        **tally.document(settings.header_timeout_seconds),
        "dead_lettered": letters["made_up"],
        "not_dead_lettered": tally.acknowledged - letters["made_up_distinct"],
        "dead_lettered_twice": letters["made_up"] - letters["made_up_distinct"],
        "requests_not_200": sum(n for status, n in tally.statuses.items() if status != 200),
        "refusal_budget": settings.notification_refusal_calls_per_minute * minutes,
        "refusal_calls": int(seen.after["queue"]["refusals"]["calls"]),
    }


def memory_figures(settings: SoakSettings, seen: Observed) -> dict[str, Any]:
    samples = seen.driven.samples
    window = min(settings.growth_window, (samples[-1].at if samples else 0) / 2)
    return {
        "idle_rss_mb": round(seen.idle_rss / MB, 1),
        "peak_rss_mb": round(max([s.rss for s in samples] + [seen.final_rss]) / MB, 1),
        "final_rss_mb": round(seen.final_rss / MB, 1),
        "bound_mb": round(settings.rss_bound(seen.idle_rss) / MB, 1),
        "growth_window_s": round(window),
        "growth_last_window_mb": round(growth(samples, window) / MB, 1) if samples else 0.0,
        "slope_second_half_mb_per_min": round(slope_mb_per_minute(samples), 2) if samples else 0.0,
        "peak_backlog": max((s.depth for s in samples), default=0),
        "peak_cache_entries": max((s.entries for s in samples), default=0),
        "peak_sessions": max((s.sessions for s in samples), default=0),
        "samples": [[round(s.at, 1), s.rss, s.depth, s.entries, s.sessions] for s in samples],
    }


def budgets_of(settings: SoakSettings, tally: Tally, seen: Observed, f: dict[str, Any]) -> list[Budget]:
    displays, memory, queue, made_up = f["displays"], f["memory"], seen.after["queue"], f["hostile"]
    lost = displays["queued_total"] - displays["counted_total"]
    uncounted = max(0, displays["views_answered_from_upstream"] - displays["impressions_of_misses"])
    return [
        Budget("unexpected errors", sum(tally.unexpected.values()), 0, False),
        Budget("displays queued, not counted by the edge", lost, 0, False),
        Budget("displays counted more than once", -lost, 0, False),
        Budget("views answered with content, not counted upstream", uncounted, 0, False),
        Budget("notifications left in the queue after the drain", int(queue["depth"]), 0, False),
        Budget("notifications dead-lettered, other than made-up ones", seen.dead_letters["other"], 0, False),
        Budget("made-up notifications acknowledged, not dead-lettered", made_up["not_dead_lettered"], 0, False),
        Budget("made-up notifications dead-lettered more than once", made_up["dead_lettered_twice"], 0, False),
        Budget("hostile requests not answered 200", made_up["requests_not_200"], 0, False),
        Budget(
            "upstream calls spent on refused notifications (budget: the refusal budget of the run's minutes)",
            int(queue["refusals"]["calls"]),
            made_up["refusal_budget"],
            False,
        ),
        Budget(
            f"lingering connections open past header_timeout_seconds + {hostile.HEAD_SLACK_S:g} s",
            made_up["lingering_held_past_bound"],
            0,
            False,
        ),
        Budget(
            "gateway RSS peak (bound from its cache, session and backlog bounds)",
            memory["peak_rss_mb"],
            memory["bound_mb"],
            False,
            " MB",
        ),
        Budget(
            f"gateway RSS growth over the last {memory['growth_window_s']} s",
            memory["growth_last_window_mb"],
            settings.growth_budget_mb,
            False,
            " MB",
        ),
        Budget("requests/s sent vs asked", round(f["achieved_rps"] / seen.rate, 3) if seen.rate else 0.0, 0.95, True),
    ]


def evaluate(settings: SoakSettings, tally: Tally, seen: Observed) -> Path:
    capacity, driven = seen.capacity, seen.driven
    if capacity.errors or capacity.non_2xx:
        tally.unexpected["capacity run: errors or non-2xx answers"] += capacity.errors + capacity.non_2xx
    figures: dict[str, Any] = {
        "settings": asdict(settings) | {"grace_s": settings.grace},
        "capacity": {"rps": round(capacity.rps), "p50_ms": capacity.p50_ms, "p99_ms": capacity.p99_ms},
        "rate": round(seen.rate),
        "achieved_rps": round(driven.sent / driven.seconds) if driven.seconds else 0,
        "sent": driven.sent,
        "seconds": round(driven.seconds, 1),
        "cores_busy": seen.cores,
        "answers": {
            "steady": dict(tally.steady),
            "in_fault_windows": sum(sum(w.statuses.values()) for w in tally.windows),
            "content": tally.content,
            "default_content": tally.defaults,
        },
        "latency": {name: hist.summary() for name, hist in tally.latency.items()},
        "generator_lag": driven.lags.summary(),
        "idle_connections_closed_by_the_gateway": driven.idle_closed,
        "unexpected": dict(tally.unexpected),
        "unexpected_examples": tally.examples,
        "windows": [
            {
                "fault": w.fault.name,
                "control": w.fault.control,
                "from_s": round(w.started - tally.origin, 2),
                "to_s": round(w.ended - tally.origin, 2),
                "statuses": dict(w.statuses),
                "default_content": w.defaults,
            }
            for w in tally.windows
        ],
        "displays": display_figures(tally, seen),
        "hostile": hostile_figures(settings, seen),
        "memory": memory_figures(settings, seen),
        "gateway": {
            "before": {k: seen.before[k] for k in ("cache", "queue")},
            **{k: seen.after[k] for k in ("cache", "queue")},
        },
        "drain_seconds": round(seen.drain_seconds, 1),
        "emulator": seen.after["emulator"],
        # second of the load -> answers that arrived in it, and the slowest of them (ms from when it was due)
        "by_second": [[second, int(n), round(slowest, 1)] for second, (n, slowest) in sorted(tally.by_second.items())],
        "seconds_with_an_answer_over_1s": sum(1 for _, slowest in tally.by_second.values() if slowest > 1000),
    }
    budgets = budgets_of(settings, tally, seen, figures)
    print(table(budgets))
    for example in tally.examples:
        print(f"unexpected: {example}")
    path = harness.report("soak", budgets, figures)
    print()
    print(summary(settings, figures, budgets))
    return path


def table(budgets: list[Budget]) -> str:
    rows = ["| budget | measured | budget | result |", "| --- | --- | --- | --- |"]
    for b in budgets:
        sign = ">=" if b.at_least else "<="
        result = "pass" if b.passed else "FAIL"
        rows.append(f"| {b.name} | {b.measured:g}{b.unit} | {sign} {b.budget:g}{b.unit} | {result} |")
    return "\n".join(rows)


def summary(settings: SoakSettings, f: dict[str, Any], budgets: list[Budget]) -> str:
    """One paragraph for the README, every claim in it read from the figures."""
    answers, displays, memory, steady_ms = f["answers"], f["displays"], f["memory"], f["latency"]["steady"]
    made_up = f["hostile"]
    steady, steady_ok = sum(answers["steady"].values()), answers["steady"].get(200, 0)
    faults = ", ".join(dict.fromkeys(w["fault"] for w in f["windows"]))
    errors = answers["in_fault_windows"] - sum(w["statuses"].get(200, 0) for w in f["windows"])
    verdict = "every budget met" if all(b.passed for b in budgets) else "BUDGETS MISSED"
    lost = max(0, displays["queued_total"] - displays["counted_total"])
    twice = max(0, displays["counted_total"] - displays["queued_total"])
    uncounted = max(0, displays["views_answered_from_upstream"] - displays["impressions_of_misses"])
    behind = f["seconds_with_an_answer_over_1s"]
    return (
        f"Soak (`python -m loadtests.soak`, {verdict}): one gateway worker measured {f['capacity']['rps']:,} req/s "
        f"on single mbox views ({100 / settings.new_every:g}% from new visitors, whose misses prefetch {len(GROUP)} "
        f"mboxes; the rest from {settings.regulars:,} regular visitors, answered from the cache), then took "
        f"{f['achieved_rps']:,} req/s ({settings.load:.0%} of it, open loop) for {f['seconds']:.0f} s, "
        f"{f['sent']:,} requests, while the emulated edge failed every {settings.fault_every:g} s for "
        f"{settings.fault_seconds:g} s ({len(f['windows'])} faults: {faults}). Outside the fault windows (each "
        f"with {settings.grace:g} s of grace) {steady_ok:,} of {steady:,} answers were 200, in "
        f"{steady_ms['p50_ms']:.1f} ms at the median and {steady_ms['p99_ms']:,.0f} ms at p99 from their due time"
        + (f" (in {behind} s of the run the gateway was over a second behind the rate)" if behind else "")
        + f"; inside them {errors:,} were the faults' JSON errors and {answers['default_content']:,} default content; "
        f"{sum(f['unexpected'].values()):,} unexpected errors. Gateway RSS peaked at {memory['peak_rss_mb']:g} MB "
        f"against a bound of {memory['bound_mb']:g} MB derived from its bounds ({settings.cache_max_entries:,} cache "
        f"entries, {settings.session_max_visitors:,} sessions, {settings.notification_max_backlog:,} queued "
        f"notifications; the cache evicted {f['gateway']['cache']['evictions']:,} visitors) and grew "
        f"{memory['growth_last_window_mb']:g} MB over its last {memory['growth_window_s']} s. "
        f"{f['drain_seconds']:g} s after the load the edge had counted {displays['counted_total']:,} displays for "
        f"the {displays['queued_total']:,} the gateway served from its cache and queued ({lost:,} lost, {twice:,} "
        f"counted twice; {displays['duplicates_absorbed_by_the_edge']:,} re-sent notifications counted once by "
        f"their ids), and {uncounted:,} of the {displays['views_answered_from_upstream']:,} views answered from "
        f"upstream went uncounted there. Beside the load a hostile client sent {made_up['made_up_acknowledged']:,} "
        f"made-up notifications in {made_up['made_up_requests']:,} requests: all acknowledged, "
        f"{made_up['dead_lettered']:,} dead-lettered, at {made_up['refusal_calls']:,} upstream calls spent finding "
        f"them (budget {made_up['refusal_budget']:,}); its {made_up['lingering_connections']:,} lingering "
        f"connections were closed within {made_up['lingering_held_longest_s']:g} s of their answer."
    )


def parse(argv: list[str] | None) -> SoakSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option in fields(SoakSettings):
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            type=type(option.default),
            default=option.default,
            help=option.metadata.get("help", "gateway setting"),
        )
    return SoakSettings(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    settings = parse(argv)
    harness.pin_self("1")
    path = soak(settings)
    return 0 if json.loads(path.read_text())["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
