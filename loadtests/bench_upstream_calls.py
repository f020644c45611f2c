"""Upstream calls per visitor session: visitors viewing the prefetched mboxes through the gateway, and
every call the emulator received for them once the notification queue has drained.

    python -m loadtests.bench_upstream_calls [--visitors 200] [--views 120] [--quick]

Each visitor views the seven mboxes of ``harness.PREFETCH_GROUP`` in rotation with the single mbox API,
``--views`` times, one view at a time (up to 32 visitors at once). Its first view is a miss: one Delivery API
call that executes that mbox (an impression upstream) and prefetches the rest; every later view is
answered from the cache and queues one display notification. Budget (DESIGN.md, "Performance
budgets"): per visitor, one delivery call plus ceil(displays / 50) notification calls, displays being
the views answered from the cache. Checks: the emulator's impressions equal the views served (every
display counted once), with no duplicate notification.

Runtime: the gateway keeps its default notification_max_delay_ms (30 s), so the last partial batch of
each visitor goes upstream about 30 s after the views.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time

import uvloop

from loadtests import harness, loadgen
from loadtests.harness import Budget

BODY = '{"mbox":"%s","thirdPartyId":"session-%d"}'


def views(url: str, visitors: int, per_visitor: int) -> list[bytes]:
    """Round by round (view j of every visitor, then view j + 1), so no visitor has two views in flight
    while fewer than ``visitors`` requests are."""
    group = harness.PREFETCH_GROUP
    return [
        loadgen.post(url, harness.SINGLE_MBOX_PATH, (BODY % (group[(v + j) % len(group)], v)).encode())
        for j in range(per_visitor)
        for v in range(visitors)
    ]


def measure(visitors: int, per_visitor: int, flush_delay_ms: int = 30_000) -> None:
    env = harness.gateway_env(directory := tempfile.mkdtemp(), notification_max_delay_ms=flush_delay_ms)
    with (
        harness.emulator(core="1") as emulator,
        harness.gateway(emulator.url, "0", env=env) as gateway,
    ):
        before = harness.emulator_stats(emulator)
        started = time.monotonic()
        planned = views(gateway.url, visitors, per_visitor)
        answers = uvloop.run(loadgen.send_all(gateway.url, planned, concurrency=min(32, visitors)))
        viewed_in = time.monotonic() - started
        cache = harness.operator(gateway, "cache")
        queue = harness.drain(gateway, within=flush_delay_ms / 1000 + 30)
        stats = harness.emulator_stats(emulator)
    shutil.rmtree(directory, ignore_errors=True)

    failed = sum(1 for status, _ in answers if status != 200)
    served = len(answers) - failed
    requests: dict[str, int] = stats["requests"]  # type: ignore[assignment]
    calls = sum(requests.values()) - sum(before["requests"].values())  # type: ignore[attr-defined]
    # After its first view (the miss), each of a visitor's views is a display answered from the cache.
    displays = int(cache["hits"])
    per_visitor_budget = 1 + math.ceil((per_visitor - 1) / 50)
    notifications: dict[str, int] = stats["notifications"]  # type: ignore[assignment]
    impressions = int(stats["impressions"]) - int(before["impressions"])  # type: ignore[call-overload]
    budgets = [
        Budget("upstream calls per visitor session", round(calls / visitors, 3), per_visitor_budget, False),
        Budget("views answered from the cache per visitor", displays / visitors, per_visitor - 1, True),
        Budget("emulator impressions per view served", round(impressions / max(served, 1), 4), 1.0, True),
        Budget("duplicate notifications", notifications["duplicates"], 0, False),
        Budget("notifications left in the queue", int(queue["depth"]), 0, False),
    ]
    print(
        f"{visitors} visitors x {per_visitor} views in {viewed_in:.1f} s: {served} served ({failed} failed), "
        f"{cache['misses']} misses, {displays} from the cache; upstream: {requests} = {calls} calls "
        f"({calls / visitors:.2f} per visitor; budget 1 delivery + ceil({per_visitor - 1} / 50) "
        f"notification calls = {per_visitor_budget}); {queue['ridden']} notifications rode on delivery calls; "
        f"impressions {impressions}, display notifications {notifications['display']}"
    )
    harness.report(
        "bench_upstream_calls",
        budgets,
        {
            "settings": {"visitors": visitors, "views": per_visitor, "notification_max_delay_ms": flush_delay_ms},
            "served": served,
            "failed": failed,
            "displays_from_cache": displays,
            "upstream_calls": calls,
            "calls_per_visitor": round(calls / visitors, 3),
            "budget_per_visitor": per_visitor_budget,
            "impressions": impressions,
            "gateway": {"cache": cache, "queue": queue},
            "emulator": stats,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--views", type=int, default=120, help="views per visitor")
    parser.add_argument("--quick", action="store_true", help="a few seconds: a smoke test")
    args = parser.parse_args()
    harness.pin_self("1")
    if args.quick:
        measure(visitors=20, per_visitor=60, flush_delay_ms=2000)
    else:
        measure(args.visitors, args.views)


if __name__ == "__main__":
    main()
