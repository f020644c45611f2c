"""SDK-shaped views against plain ones, on the cache-hit path, in the same run.

    python -m loadtests.bench_sdk [--seconds 10] [--visitors 1000] [--connections 64] [--quick]

An SDK-shaped view is the Delivery API request Adobe's Node.js SDK (2.4.3) sends for a plain ``getOffers``
with its defaults: besides the visitor and the mbox, ``requestId``, ``context.timeOffsetInMinutes``,
``experienceCloud.analytics`` and, on every call, a ``telemetry`` entry with the timings of its previous
call. A plain view has only the visitor, the channel and the mbox. The same visitors (warmed with one miss
each) ask for the same mboxes in the same rotation; the gateway has core 0, wrk and the emulator core 1;
plain and SDK-shaped runs alternate, twice each.

Budgets: the SDK-shaped views' hit rate equals the plain views' (every measured view a hit); the gateway's
CPU time per SDK-shaped view is at most 1.15x a plain one's (its body is larger, and its entry rides on the
view's notification); every telemetry entry sent reaches the emulator.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import uvloop

from loadtests import harness, loadgen
from loadtests.harness import Budget

PATH = "/rest/v1/delivery?client=demo"
PLAIN = '{"id":{"thirdPartyId":"sdk-%d"},"context":{"channel":"web"},"execute":{"mboxes":[{"index":0,"name":"%s"}]}}'
SDK = (
    '{"requestId":"r-%d-%d","id":{"thirdPartyId":"sdk-%d"},'
    '"context":{"channel":"web","timeOffsetInMinutes":0},'
    '"experienceCloud":{"analytics":{"supplementalDataId":"64412312990CBD4C-5F6D0B7041D33C6C","logging":"server_side"}},'
    '"execute":{"mboxes":[{"index":0,"name":"%s"}]},'
    '"telemetry":{"entries":[{"requestId":"p-%d-%d","timestamp":1796525291447,"mode":"local","execution":2.5,'
    '"features":{"decisioningMethod":"server-side","executeMboxCount":1}}]}}'
)
PRELUDE = "local MBOXES = {{{names}}}\nlocal VISITORS = {visitors}"
VISITOR = "counter % VISITORS"
MBOX = "MBOXES[math.floor(counter / VISITORS) % #MBOXES + 1]"


def script(visitors: int, sdk: bool) -> str:
    names = ", ".join(f'"{name}"' for name in harness.PREFETCH_GROUP)
    prelude = PRELUDE.format(names=names, visitors=visitors)
    if sdk:
        args = ("tid", "counter", VISITOR, MBOX, "tid", "counter")
        return harness.lua_post(PATH, SDK, args, prelude)
    return harness.lua_post(PATH, PLAIN, (VISITOR, MBOX), prelude)


def warm(gateway: harness.Server, visitors: int) -> None:
    group = harness.PREFETCH_GROUP
    requests = [loadgen.post(gateway.url, PATH, (PLAIN % (v, group[v % len(group)])).encode()) for v in range(visitors)]
    answers = uvloop.run(loadgen.send_all(gateway.url, requests))
    failed = [status for status, _ in answers if status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} warm-up misses failed, e.g. HTTP {failed[0]}")


def run(gateway: harness.Server, visitors: int, sdk: bool, seconds: float, connections: int) -> dict[str, Any]:
    assert gateway.process is not None
    before = harness.operator(gateway, "cache")
    cpu = gateway.cpu_seconds()
    result = harness.wrk(gateway.url, script(visitors, sdk), seconds=seconds, connections=connections, core="1")
    spent = gateway.cpu_seconds() - cpu
    after = harness.operator(gateway, "cache")
    hits = int(after["hits"]) - int(before["hits"])  # type: ignore[call-overload]
    misses = int(after["misses"]) - int(before["misses"])  # type: ignore[call-overload]
    return {
        "requests": result.requests,
        "rps": round(result.rps),
        "non_2xx": result.non_2xx + result.errors,
        "hit_rate": hits / max(1, hits + misses),
        "cpu_us_per_request": spent / max(1, result.requests) * 1e6,
    }


def measure(visitors: int, seconds: float, connections: int) -> None:
    env = harness.gateway_env(tempfile.mkdtemp(), notification_max_delay_ms=1000)
    with harness.emulator(core="1") as emulator, harness.gateway(emulator.url, "0", env=env) as gateway:
        warm(gateway, visitors)
        runs: dict[str, list[dict[str, Any]]] = {"plain": [], "sdk": []}
        for _ in range(2):
            for kind in ("plain", "sdk"):
                runs[kind].append(run(gateway, visitors, kind == "sdk", seconds, connections))
        sent = sum(r["requests"] for r in runs["sdk"])
        queue = harness.drain(gateway, within=60)
        deadline = time.monotonic() + 30
        while True:
            received = int(harness.emulator_stats(emulator)["telemetry"]["entries"])  # type: ignore[index]
            if received >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    def mean(kind: str, key: str) -> float:
        return sum(r[key] for r in runs[kind]) / len(runs[kind])

    plain_cpu, sdk_cpu = mean("plain", "cpu_us_per_request"), mean("sdk", "cpu_us_per_request")
    plain_hits, sdk_hits = mean("plain", "hit_rate"), mean("sdk", "hit_rate")
    print(f"plain: {mean('plain', 'rps'):.0f} req/s, {plain_cpu:.1f} us CPU a view, hit rate {plain_hits:.4f}")
    print(f"SDK-shaped: {mean('sdk', 'rps'):.0f} req/s, {sdk_cpu:.1f} us CPU a view, hit rate {sdk_hits:.4f}")
    answered = 1.0 if all(r["non_2xx"] == 0 for r in runs["sdk"]) else 0.0
    harness.report(
        "bench_sdk",
        [
            Budget("SDK-shaped hit rate vs plain", round(sdk_hits / max(1e-9, plain_hits), 4), 0.999, True, "x"),
            Budget("SDK-shaped views answered 200", answered, 1, True),
            Budget("gateway CPU per SDK-shaped view vs plain", round(sdk_cpu / plain_cpu, 3), 1.15, False, "x"),
            Budget("telemetry entries at the emulator per entry sent", round(received / max(1, sent), 4), 1, True),
        ],
        {
            "settings": {"visitors": visitors, "seconds": seconds, "connections": connections},
            "runs": runs,
            "telemetry": {"sent": sent, "received": received},
            "queue": queue,
        },
    )


def main() -> None:
    harness.scaling_cli(__doc__, measure)


if __name__ == "__main__":
    main()
