"""Miss-path benchmark: the gateway forwarding to the emulator, against the emulator called directly.

Every request is for a new visitor, so nothing can be answered from memory. Both runs send the same
Delivery API request; the ratio of requests/s and the added median latency are the budget's figures
(>= 70% of the emulator's throughput, <= 0.5 ms added median).

    python -m loadtests.bench_miss [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from loadtests import harness

REQUEST = (
    '{"id":{"thirdPartyId":"miss-%d-%d"},"context":{"channel":"web"},'
    '"execute":{"mboxes":[{"index":0,"name":"home-hero"}]},'
    '"prefetch":{"mboxes":[{"index":0,"name":"product-reco"}]}}'
)
PATH = "/rest/v1/delivery?client=demo&sessionId=miss-%d-%d"


def measure(seconds: float, connections: int) -> dict[str, object]:
    """The server measured has core 0 to itself; wrk runs on core 1, beside the emulator when the
    emulator stands in for the remote edge behind the gateway."""
    script = harness.lua_post(PATH, REQUEST)
    with harness.emulator(core="0") as emulator:
        harness.wrk(emulator.url, script, seconds=2, connections=connections, core="1")  # warm-up
        direct = harness.wrk(emulator.url, script, seconds=seconds, connections=connections, core="1")
        direct_one = harness.wrk(emulator.url, script, seconds=seconds / 2, connections=1, core="1")
    with harness.emulator(core="1") as emulator, harness.gateway(emulator.url, core="0") as gateway:
        harness.wrk(gateway.url, script, seconds=2, connections=connections, core="1")
        proxied = harness.wrk(gateway.url, script, seconds=seconds, connections=connections, core="1")
        proxied_one = harness.wrk(gateway.url, script, seconds=seconds / 2, connections=1, core="1")
    throughput_ratio = proxied.rps / direct.rps
    added_ms = proxied_one.p50_ms - direct_one.p50_ms
    return {
        "direct": asdict(direct) | {"rps": round(direct.rps)},
        "gateway": asdict(proxied) | {"rps": round(proxied.rps)},
        "direct_sequential": asdict(direct_one),
        "gateway_sequential": asdict(proxied_one),
        "throughput_ratio": round(throughput_ratio, 3),
        "added_median_ms": round(added_ms, 3),
        "budget": {"throughput_ratio": 0.70, "added_median_ms": 0.5},
        "pass": throughput_ratio >= 0.70 and added_ms <= 0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    result = measure(args.seconds, args.connections)
    print(json.dumps(result, indent=2))
    print(
        f"miss path: gateway {result['gateway']['rps']} req/s vs emulator {result['direct']['rps']} req/s "
        f"= {result['throughput_ratio']:.0%} (budget >= 70%); added median {result['added_median_ms']} ms "
        f"(budget <= 0.5 ms): {'PASS' if result['pass'] else 'SHORT'}"
    )


if __name__ == "__main__":
    main()
