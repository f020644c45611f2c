"""Two gateway workers against one, on the cache-hit path.

    python -m loadtests.bench_workers [--seconds 10] [--visitors 1000] [--quick]

One worker runs on core 0; two run on cores 0 and 1. Two workers share sessions, cache and
notifications on the Redis that ``serve`` starts for them (a unix socket, append-only file fsynced every
second), so a visitor keeps one session whichever worker answers. The cost of that sharing is measured
apart: one worker on the same kind of Redis against one in memory. wrk is not pinned: on a two-core
machine it has to share the cores with two workers (the emulator, which only answers the warm-up misses
and the flushes, runs at the lowest priority; Redis is not pinned either). Budget: two workers >= 1.7x
one in memory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from loadtests import bench_hit, harness
from loadtests.harness import Budget
from proxy.local_redis import LocalRedis
from proxy.settings import Settings


def capacity(
    workers: int, cores: str, visitors: int, seconds: float, connections: int, **settings: object
) -> harness.WrkResult:
    env = harness.gateway_env(tempfile.mkdtemp(), **settings)
    with (
        harness.emulator(None, nice=True) as emulator,
        harness.gateway(emulator.url, cores, "--workers", str(workers), env=env) as gateway,
    ):
        bench_hit.warm(gateway, visitors)
        script = bench_hit.wrk_script(visitors)
        harness.wrk(gateway.url, script, seconds=max(1.0, seconds / 5), connections=connections)
        return harness.wrk(gateway.url, script, seconds=seconds, connections=connections)


def measure(visitors: int, seconds: float, connections: int) -> None:
    one = capacity(1, "0", visitors, seconds, connections)
    state = Path(tempfile.mkdtemp(prefix="target-proxy-bench-"))
    redis = LocalRedis(Settings(workers=2, notification_store=state / "notifications")).start()
    try:
        one_shared = capacity(1, "0", visitors, seconds, connections, redis_url=redis.url)
    finally:
        redis.stop()
    two = capacity(2, "0,1", visitors, seconds, connections)
    print(
        f"workers: one {one.rps:.0f} req/s, one on its Redis {one_shared.rps:.0f} req/s, "
        f"two (sharing their Redis) {two.rps:.0f} req/s"
    )
    harness.report(
        "bench_workers",
        [
            Budget("two workers vs one (hit requests/s)", round(two.rps / one.rps, 3), 1.7, True, "x"),
            Budget(
                "one worker on the local Redis vs one in memory (informational)",
                round(one_shared.rps / one.rps, 3),
                0.0,
                True,
                "x",
            ),
        ],
        {
            "settings": {"visitors": visitors, "seconds": seconds, "connections": connections},
            "one": bench_hit.wrk_figures(one),
            "one_shared": bench_hit.wrk_figures(one_shared),
            "two": bench_hit.wrk_figures(two),
        },
    )


def main() -> None:
    harness.scaling_cli(__doc__, measure)


if __name__ == "__main__":
    main()
