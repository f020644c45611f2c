"""A miss decided on device, against a cache hit and against a server-side miss, in one run.

    python -m loadtests.bench_on_device [--visitors 1000] [--seconds 5] [--rounds 3]

One gateway on core 0 decides ``hybrid`` from a rules artifact: Adobe's AB fixture artifact (from the
pinned ``@adobe/target-decisioning-engine`` package in tests/node, ``npm ci`` installs it), whose
``mbox-magician`` it decides on device while the demo catalog's mboxes go to the emulator (core 1, with
wrk and this process). Each round, in this order:

- server-side misses: ``visitors`` new visitors view ``home-hero`` on the single mbox API, one emulator
  call each (which prefetches the demo group into their cache);
- single mbox hits: wrk sends those visitors' views of the demo group for ``seconds``, each answered
  from the cache;
- Delivery API hits: ``visitors`` other visitors prefetch ``mbox-magician`` on device (which fills their
  cache), then wrk sends their Delivery API views of it for ``seconds``, each answered from the cache;
- on-device misses: wrk sends the same Delivery API view of ``mbox-magician`` for ``seconds``, each by a
  visitor never seen before, each decided from the artifact (and its display notification queued).

Reported, as medians over the rounds: the gateway's CPU time per request of each kind and the requests
per second of the wrk runs. Budget (the on-device issue): an on-device miss costs at most 2x a hit, in
requests per second: the hit of the same request (a Delivery API view of the mbox by a visitor whose
cache has it); the single mbox hit (the cheapest request the gateway answers) is shown beside it.
Display notifications wait in the queue meanwhile (the artifact's event tokens are Adobe's, which the
emulator does not know), and the gateway stops without sending them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import uvloop

from loadtests import harness, loadgen
from loadtests.bench_hit import view, wrk_script

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = (
    ROOT / "tests/node/node_modules/@adobe/target-decisioning-engine/test/schema/artifacts/TEST_ARTIFACT_AB_SIMPLE.json"
)
DELIVERY_PATH = "/rest/v1/delivery?client=demo"
USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:73.0) Gecko/20100101 Firefox/73.0"
CONTEXT = f'"context":{{"channel":"web","address":{{"url":"http://shop.example.com/"}},"userAgent":"{USER_AGENT}"}}'
MAGICIAN = '{"mboxes":[{"name":"mbox-magician","index":1}]}'
ON_DEVICE_BODY = '{"id":{"tntId":"od-%d-%d"},' + CONTEXT + ',"execute":' + MAGICIAN + "}"
CACHED_BODY = '{"id":{"tntId":"dh-%d"},' + CONTEXT + ',"execute":' + MAGICIAN + "}"
PREFETCH_BODY = '{"id":{"tntId":"dh-%d"},' + CONTEXT + ',"prefetch":' + MAGICIAN + "}"
BUDGET = 2.0


def one_round(emulator: harness.Server, visitors: int, seconds: float) -> dict[str, float]:
    env = harness.gateway_env(
        tempfile.mkdtemp(),
        notification_max_delay_ms=3_600_000,
        shutdown_grace_seconds=0,
        decisioning_method="hybrid",
        decisioning_artifact=str(ARTIFACT),
    )
    group = harness.PREFETCH_GROUP
    with harness.gateway(emulator.url, "0", env=env) as gateway:
        requests = [view(gateway.url, v, group[v % len(group)]) for v in range(visitors)]
        before = gateway.cpu_seconds()
        answers = uvloop.run(loadgen.send_all(gateway.url, requests, concurrency=16))
        missed = gateway.cpu_seconds()
        if any(status != 200 for status, _ in answers):
            raise RuntimeError("a server-side miss failed")
        hits = harness.wrk(gateway.url, wrk_script(visitors), seconds=seconds, connections=32, core="1")
        hit = gateway.cpu_seconds()
        prefetches = [loadgen.post(gateway.url, DELIVERY_PATH, (PREFETCH_BODY % v).encode()) for v in range(visitors)]
        if any(status != 200 for status, _ in uvloop.run(loadgen.send_all(gateway.url, prefetches, concurrency=16))):
            raise RuntimeError("an on-device prefetch failed")
        cached_script = harness.lua_post(
            DELIVERY_PATH, CACHED_BODY, ("counter % VISITORS",), f"local VISITORS = {visitors}"
        )
        filled = gateway.cpu_seconds()
        cached = harness.wrk(gateway.url, cached_script, seconds=seconds, connections=32, core="1")
        delivery_hit = gateway.cpu_seconds()
        script = harness.lua_post(DELIVERY_PATH, ON_DEVICE_BODY)
        decided = harness.wrk(gateway.url, script, seconds=seconds, connections=32, core="1")
        after = gateway.cpu_seconds()
        for result, kind in ((hits, "hits"), (cached, "Delivery API hits"), (decided, "on-device misses")):
            if result.non_2xx or result.errors:
                raise RuntimeError(f"{result.non_2xx + result.errors} failed {kind}")
        answered = int(str(harness.operator(gateway, "cache")["hits"]))
        if answered < hits.requests + cached.requests:
            raise RuntimeError(f"{answered} cache hits for {hits.requests + cached.requests} views of cached content")
    return {
        "server_side_miss_us": (missed - before) / visitors * 1e6,
        "hit_us": (hit - missed) / hits.requests * 1e6,
        "delivery_hit_us": (delivery_hit - filled) / cached.requests * 1e6,
        "on_device_miss_us": (after - delivery_hit) / decided.requests * 1e6,
        "hits_per_s": hits.rps,
        "delivery_hits_per_s": cached.rps,
        "on_device_per_s": decided.rps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not ARTIFACT.is_file():
        raise SystemExit(f"{ARTIFACT} is missing: npm ci --prefix tests/node")
    harness.pin_self("1")
    rounds = []
    with harness.emulator(core="1") as emulator:
        for number in range(args.rounds):
            figures = one_round(emulator, args.visitors, args.seconds)
            print(f"round {number + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
            rounds.append(figures)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratio = median["delivery_hits_per_s"] / median["on_device_per_s"]
    print(f"\nmedians of {args.rounds} rounds:")
    for key, value in median.items():
        print(f"  {key:22} {value:10.1f}")
    cpu_hit = median["on_device_miss_us"] / median["delivery_hit_us"]
    cpu_single = median["on_device_miss_us"] / median["hit_us"]
    cpu_miss = median["on_device_miss_us"] / median["server_side_miss_us"]
    verdict = "ok" if ratio <= BUDGET else "OVER"
    print(f"  on-device miss / Delivery API hit, CPU per request: {cpu_hit:.2f}x")
    print(f"  on-device miss / single mbox hit, CPU per request: {cpu_single:.2f}x")
    print(f"  on-device miss / server-side miss, CPU per request: {cpu_miss:.2f}x")
    single = median["hits_per_s"] / median["on_device_per_s"]
    print(f"  single mbox hits/s over on-device misses/s: {single:.2f}")
    print(f"  Delivery API hits/s over on-device misses/s: {ratio:.2f} (budget: at most {BUDGET:.1f}) {verdict}")


if __name__ == "__main__":
    main()
