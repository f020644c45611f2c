"""Cache-hit benchmark: single mbox views answered from the gateway's memory, against the bare Starlette
echo endpoint (loadtests/echo_app.py) in the same run, with the same requests, connections and cores.

    python -m loadtests.bench_hit [--visitors 2000] [--seconds 10] [--connections 32] [--load 0.5] [--quick]

Each visitor is warmed with one miss (which prefetches the seven mboxes of ``harness.PREFETCH_GROUP``);
then request ``n`` views mbox ``(n // visitors) % 7`` as visitor ``n % visitors``, so every visitor sees
its prefetched mboxes in rotation and every measured request should be a hit that queues one display
notification (flushed upstream in the background, in batches of 50 per visitor). The server measured
has core 0 to itself; wrk, this process and the emulator (which only answers the warm-up misses and
the flushes) share core 1.

Budgets (DESIGN.md, "Performance budgets"):
- capacity: wrk at saturation, hit requests/s >= 60% of the echo's;
- latency: p99 <= 1.5x the echo's at the same load. Both servers get the same fixed rate, ``--load``
  times the echo's measured capacity, from ``loadtests/loadgen.py``: wrk 4.1 has no fixed rate, and
  pacing it with a Lua ``delay()`` would make each connection wait for its answer before the pause (a
  closed loop: the load would fall as latency rises, so the two servers would not get the same load,
  and a stall would hide the requests it held back), with whole-millisecond pauses. The generator is
  open-loop and takes each latency from the request's due time. Both also run at half that rate, for
  information.
Checks: the measured requests were hits (from the gateway's /_proxy/cache counters), each queued one
notification (/_proxy/queue), and within 30 s after the longest a partial batch may wait (the default
notification_max_delay_ms, 30 s) the emulator has counted every one.

The echo runs first, while the gateway is idle; then the gateway, whose background flushing is part of
what it costs. ``--quick`` runs a few seconds at a tenth of the echo's capacity: a smoke test, not a
measurement.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from typing import Any

import uvloop

from loadtests import harness, loadgen
from loadtests.harness import Budget

BODY = '{"mbox":"%s","thirdPartyId":"hit-%d"}'


def wrk_script(visitors: int) -> str:
    names = ", ".join(f'"{name}"' for name in harness.PREFETCH_GROUP)
    prelude = f"local MBOXES = {{{names}}}\nlocal VISITORS = {visitors}"
    args = ("MBOXES[math.floor(counter / VISITORS) % #MBOXES + 1]", "counter % VISITORS")
    return harness.lua_post(harness.SINGLE_MBOX_PATH, BODY, args, prelude)


def view(url: str, visitor: int, mbox: str) -> bytes:
    return loadgen.post(url, harness.SINGLE_MBOX_PATH, (BODY % (mbox, visitor)).encode())


def raw_views(url: str, visitors: int) -> list[bytes]:
    """The same rotation as the wrk script, as raw requests: index n is request n (mod the list)."""
    group = harness.PREFETCH_GROUP
    return [view(url, n % visitors, group[(n // visitors) % len(group)]) for n in range(visitors * len(group))]


def fixed_rate(url: str, visitors: int, rate: float, seconds: float, connections: int) -> loadgen.RateResult:
    requests = raw_views(url, visitors)
    return uvloop.run(
        loadgen.fixed_rate(
            url, lambda n: requests[n % len(requests)], rate=rate, seconds=seconds, connections=connections
        )
    )


def warm(gateway: harness.Server, visitors: int) -> None:
    """One miss per visitor: its session, and its prefetched mboxes in the cache."""
    group = harness.PREFETCH_GROUP
    requests = [view(gateway.url, v, group[v % len(group)]) for v in range(visitors)]
    answers = uvloop.run(loadgen.send_all(gateway.url, requests))
    failed = [status for status, _ in answers if status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} warm-up misses failed, e.g. HTTP {failed[0]}")


def wrk_figures(result: harness.WrkResult) -> dict[str, Any]:
    return {"rps": round(result.rps), "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, **vars(result)}


def measure(
    visitors: int, seconds: float, connections: int, load: float, warmup: float, flush_delay_ms: int = 30_000
) -> None:
    """``flush_delay_ms``: how long a visitor's partial batch of notifications waits (the gateway's default)."""
    script = wrk_script(visitors)
    env = harness.gateway_env(directory := tempfile.mkdtemp(), notification_max_delay_ms=flush_delay_ms)
    with (
        harness.emulator(core="1") as emulator,
        harness.gateway(emulator.url, "0", env=env) as gateway,
        harness.echo(core="0") as echo,
    ):
        warm(gateway, visitors)
        warmed = harness.operator(gateway, "cache")

        # The baseline first, while the gateway is idle (its queue is empty until hits begin).
        if warmup:
            harness.wrk(echo.url, script, seconds=warmup, connections=connections, core="1")
        echo_capacity = harness.wrk(echo.url, script, seconds=seconds, connections=connections, core="1")
        rate = load * echo_capacity.rps
        echo_paced = fixed_rate(echo.url, visitors, rate, seconds, connections)
        echo_half = fixed_rate(echo.url, visitors, rate / 2, seconds / 2, connections)

        if warmup:
            harness.wrk(gateway.url, script, seconds=warmup, connections=connections, core="1")
        cache_before, queue_before = harness.operator(gateway, "cache"), harness.operator(gateway, "queue")
        hit_capacity = harness.wrk(gateway.url, script, seconds=seconds, connections=connections, core="1")
        hit_paced = fixed_rate(gateway.url, visitors, rate, seconds, connections)
        hit_half = fixed_rate(gateway.url, visitors, rate / 2, seconds / 2, connections)
        cache_after, queue_after = harness.operator(gateway, "cache"), harness.operator(gateway, "queue")
        # Partial batches wait flush_delay_ms; everything should be upstream some seconds after that.
        started = time.monotonic()
        drained = harness.drain(gateway, within=flush_delay_ms / 1000 + 30)
        drain_seconds = time.monotonic() - started
        stats = harness.emulator_stats(emulator)
    shutil.rmtree(directory, ignore_errors=True)

    hits = int(cache_after["hits"]) - int(cache_before["hits"])
    misses = int(cache_after["misses"]) - int(cache_before["misses"])
    accepted = int(queue_after["accepted"]) - int(queue_before["accepted"])
    answered = hit_capacity.requests + sum(hit_paced.statuses.values()) + sum(hit_half.statuses.values())
    notifications: dict[str, int] = stats["notifications"]  # type: ignore[assignment]
    paced = {name: run.summary() for name, run in (("echo", echo_paced), ("hit", hit_paced))}
    halved = {name: run.summary() for name, run in (("echo", echo_half), ("hit", hit_half))}
    p99_ratio = float(paced["hit"]["p99_ms"]) / max(float(paced["echo"]["p99_ms"]), 1e-9)
    budgets = [
        Budget("hit requests/s vs echo", round(hit_capacity.rps / echo_capacity.rps, 3), 0.60, True),
        Budget(f"hit p99 vs echo p99 at {rate:.0f} req/s", round(p99_ratio, 3), 1.5, False, "x"),
        Budget("hit rate of the measured requests", round(hits / max(hits + misses, 1), 4), 0.99, True),
        Budget("notifications accepted per hit", round(accepted / max(hits, 1), 4), 1.0, True),
        Budget(
            f"notifications upstream {drain_seconds:.0f} s after the load, per accepted",
            round(notifications["display"] / max(int(drained["accepted"]), 1), 4),
            1.0,
            True,
        ),
    ]
    runs = [echo_capacity, hit_capacity]
    errors = sum(r.errors + r.non_2xx for r in runs) + sum(
        n for run in (echo_paced, echo_half, hit_paced, hit_half) for status, n in run.statuses.items() if status != 200
    )
    flush_rate = (int(drained["flushed"]) - int(queue_after["flushed"])) / max(drain_seconds, 1e-9)
    print(
        f"capacity at {connections} connections: hit {hit_capacity.rps:.0f} req/s (p50/p99 {hit_capacity.p50_ms}/"
        f"{hit_capacity.p99_ms} ms) vs echo {echo_capacity.rps:.0f} req/s ({echo_capacity.p50_ms}/"
        f"{echo_capacity.p99_ms} ms)"
    )
    for figures, at in ((paced, rate), (halved, rate / 2)):
        print(
            f"fixed rate {at:.0f} req/s: hit p50/p99 {figures['hit']['p50_ms']}/{figures['hit']['p99_ms']} ms vs echo "
            f"{figures['echo']['p50_ms']}/{figures['echo']['p99_ms']} ms (client lag p99 "
            f"{figures['hit']['generator_lag_p99_ms']}/{figures['echo']['generator_lag_p99_ms']} ms)"
        )
    print(
        f"gateway: {hits} hits, {misses} misses, {answered} answers counted by the clients, {accepted} notifications "
        f"accepted; {queue_after['depth']} waiting at the end of the load; then {flush_rate:.0f} flushed/s for "
        f"{drain_seconds:.0f} s, {drained['depth']} left; the emulator counted {notifications['display']} displays "
        f"({notifications['duplicates']} duplicates); errors {errors}"
    )
    harness.report(
        "bench_hit",
        budgets,
        {
            "settings": {"visitors": visitors, "seconds": seconds, "connections": connections, "load": load},
            "errors": errors,
            "capacity": {"echo": wrk_figures(echo_capacity), "hit": wrk_figures(hit_capacity)},
            "fixed_rate": {"rate": round(rate), **paced},
            "fixed_half_rate": {"rate": round(rate / 2), **halved},
            "gateway": {"warmed": warmed, "cache": cache_after, "queue": queue_after, "drained": drained},
            "hits": hits,
            "misses": misses,
            "answered": answered,
            "accepted": accepted,
            "drain_seconds": round(drain_seconds, 1),
            "flushed_per_second_while_draining": round(flush_rate),
            "emulator": stats,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--load", type=float, default=0.5, help="fixed rate, as a share of the echo's capacity")
    parser.add_argument("--quick", action="store_true", help="a few seconds: a smoke test, not a measurement")
    args = parser.parse_args()
    harness.pin_self("1")
    if args.quick:
        measure(visitors=100, seconds=1, connections=8, load=0.1, warmup=0, flush_delay_ms=500)
    else:
        measure(args.visitors, args.seconds, args.connections, args.load, warmup=2)


if __name__ == "__main__":
    main()
