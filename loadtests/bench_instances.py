"""Two gateway instances sharing Redis against one, behind a round-robin load balancer, on the hit path.

    python -m loadtests.bench_instances [--seconds 10] [--visitors 1000] [--connections 64] [--quick]

Each run starts a redis-server of its own (append-only file, fsync every second, as the README's
deployment), the emulator (at the lowest priority: it only answers the warm-up misses and the
notification flushes), the gateway instance(s) with ``redis_url`` set, and ``loadtests/roundrobin.py``
in front of them; wrk sends cache-hit views (the rotation of ``bench_hit``) to the balancer. One instance
runs on core 0; two run on cores 0 and 1. wrk, the balancer and Redis are not pinned: on a two-core
machine they share the cores with the instances, so the ratio says more about the machine than about
the gateway there. For information, one instance without Redis behind the same balancer shows what
sharing costs a single gateway.

Budget (informational, as DESIGN.md's workers budget): two instances >= 1.7x one. Checks: the measured
views were hits, and once the notifications are flushed the emulator counted one display per hit, with
no duplicate.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadtests import bench_hit, harness
from loadtests.harness import Budget

FLUSH_DELAY_MS = 1000


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port, in a temporary directory; its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    directory = Path(tempfile.mkdtemp(prefix="target-proxy-redis-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
        "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                try:
                    probe.connect(("127.0.0.1", port))
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
                except OSError:
                    pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def balancer(backends: list[harness.Server]) -> harness.Server:
    command = [sys.executable, "-m", "loadtests.roundrobin", *(b.url for b in backends)]
    return harness.Server(command, None, "balancer")


def settle(emulator: harness.Server, gateways: list[harness.Server], within: float) -> dict[str, Any]:
    """Wait until every gateway's notifications are flushed (the local logs and the shared stream); what the
    emulator counted then."""
    deadline = time.monotonic() + within
    last = -1
    while True:
        counted = harness.emulator_stats(emulator)
        queues = [harness.operator(g, "queue") for g in gateways]
        waiting = sum(int(q["depth"]) + int(q.get("shared", {}).get("streamDepth", 0)) for q in queues)
        displays = counted["notifications"]["display"]  # type: ignore[index]
        if (waiting == 0 and displays == last) or time.monotonic() > deadline:
            return counted
        last = displays
        time.sleep(0.5)


def capacity(instances: int, shared: bool, visitors: int, seconds: float, connections: int) -> dict[str, Any]:
    cores = ["0", "1"][:instances]
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()) if shared else None
        emulator = stack.enter_context(harness.emulator(None, nice=True))
        gateways = []
        for core in cores:
            settings: dict[str, object] = {"notification_max_delay_ms": FLUSH_DELAY_MS, "access_log": "false"}
            if redis_url:
                settings["redis_url"] = redis_url
            env = harness.gateway_env(tempfile.mkdtemp(), **settings)
            gateways.append(stack.enter_context(harness.gateway(emulator.url, core, env=env)))
        front = stack.enter_context(balancer(gateways))
        bench_hit.warm(front, visitors)
        script = bench_hit.wrk_script(visitors)
        harness.wrk(front.url, script, seconds=max(1.0, seconds / 5), connections=connections)
        before = [harness.operator(g, "cache") for g in gateways]
        result = harness.wrk(front.url, script, seconds=seconds, connections=connections)
        after = [harness.operator(g, "cache") for g in gateways]
        counted = settle(emulator, gateways, within=FLUSH_DELAY_MS / 1000 + 30)
        all_hits = sum(int(c["hits"]) for c in after)
        hits = sum(int(a["hits"]) - int(b["hits"]) for a, b in zip(after, before, strict=True))
        misses = sum(int(a["misses"]) - int(b["misses"]) for a, b in zip(after, before, strict=True))
        notifications = counted["notifications"]
        return {
            **bench_hit.wrk_figures(result),
            "instances": instances,
            "redis": shared,
            "hit_rate": round(hits / max(1, hits + misses), 4),
            "hits_per_instance": [int(a["hits"]) - int(b["hits"]) for a, b in zip(after, before, strict=True)],
            "displays_per_hit": round(notifications["display"] / max(1, all_hits), 4),  # type: ignore[index]
            "duplicates": notifications["duplicates"],  # type: ignore[index]
        }


def measure(visitors: int, seconds: float, connections: int) -> None:
    alone = capacity(1, False, visitors, seconds, connections)
    one = capacity(1, True, visitors, seconds, connections)
    two = capacity(2, True, visitors, seconds, connections)
    print(
        f"behind the balancer: one instance in memory {alone['rps']} req/s; on Redis, one {one['rps']} req/s, "
        f"two {two['rps']} req/s (hits per instance {two['hits_per_instance']})"
    )
    runs = (one, two)
    harness.report(
        "bench_instances",
        [
            Budget(
                "two instances vs one, sharing Redis (hit requests/s)",
                round(two["rps"] / one["rps"], 3),
                1.7,
                True,
                "x",
            ),
            Budget(
                "one instance on Redis vs in memory (hit requests/s)",
                round(one["rps"] / alone["rps"], 3),
                0.0,
                True,
                "x",
            ),
            Budget("hit rate of the measured requests", min(r["hit_rate"] for r in runs), 0.99, True),
            Budget("emulator displays per cache hit", min(r["displays_per_hit"] for r in runs), 1.0, True),
            Budget("duplicate notifications", max(r["duplicates"] for r in runs), 0, False),
        ],
        {
            "settings": {"visitors": visitors, "seconds": seconds, "connections": connections},
            "one_in_memory": alone,
            "one": one,
            "two": two,
        },
    )


def main() -> None:
    harness.scaling_cli(__doc__, measure)


if __name__ == "__main__":
    main()
