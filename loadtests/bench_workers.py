"""Two gateway workers against one, on the cache-hit path.

    python -m loadtests.bench_workers [--seconds 10] [--visitors 1000] [--quick]

One worker runs on core 0; two run on cores 0 and 1. wrk is not pinned: on a two-core machine it has to
share the cores with two workers (the emulator, which only answers the warm-up misses and the flushes,
runs at the lowest priority). Budget: two workers >= 1.7x one.
"""

from __future__ import annotations

import tempfile

from loadtests import bench_hit, harness
from loadtests.harness import Budget


def capacity(workers: int, cores: str, visitors: int, seconds: float, connections: int) -> harness.WrkResult:
    env = harness.gateway_env(tempfile.mkdtemp())
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
    two = capacity(2, "0,1", visitors, seconds, connections)
    print(f"workers: one {one.rps:.0f} req/s, two {two.rps:.0f} req/s")
    harness.report(
        "bench_workers",
        [Budget("two workers vs one (hit requests/s)", round(two.rps / one.rps, 3), 1.7, True, "x")],
        {
            "settings": {"visitors": visitors, "seconds": seconds, "connections": connections},
            "one": bench_hit.wrk_figures(one),
            "two": bench_hit.wrk_figures(two),
        },
    )


def main() -> None:
    harness.scaling_cli(__doc__, measure)


if __name__ == "__main__":
    main()
