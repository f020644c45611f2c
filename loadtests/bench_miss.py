"""Miss-path benchmark: the gateway forwarding to the emulator, against the emulator called directly.

Every request is for a new visitor, so nothing can be answered from memory. Both runs send the same
Delivery API request; the ratio of requests/s and the added median latency are the budget's figures
(>= 70% of the emulator's throughput, <= 0.5 ms added median).

    python -m loadtests.bench_miss [--seconds 10] [--connections 32] [--quick]

The server measured has core 0 to itself; wrk runs on core 1, beside the emulator when the emulator
stands in for the remote edge behind the gateway. The added median is taken one request at a time.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict

from loadtests import harness
from loadtests.harness import Budget

REQUEST = (
    '{"id":{"thirdPartyId":"miss-%d-%d"},"context":{"channel":"web"},'
    '"execute":{"mboxes":[{"index":0,"name":"home-hero"}]},'
    '"prefetch":{"mboxes":[{"index":0,"name":"product-reco"}]}}'
)
PATH = "/rest/v1/delivery?client=demo&sessionId=miss-%d-%d"


def measure(seconds: float, connections: int, warmup: float = 2) -> None:
    script = harness.lua_post(PATH, REQUEST)
    with harness.emulator(core="0") as emulator:
        if warmup:
            harness.wrk(emulator.url, script, seconds=warmup, connections=connections, core="1")
        direct = harness.wrk(emulator.url, script, seconds=seconds, connections=connections, core="1")
        direct_one = harness.wrk(emulator.url, script, seconds=seconds / 2, connections=1, core="1")
    env = harness.gateway_env(tempfile.mkdtemp())
    with harness.emulator(core="1") as emulator, harness.gateway(emulator.url, "0", env=env) as gateway:
        if warmup:
            harness.wrk(gateway.url, script, seconds=warmup, connections=connections, core="1")
        proxied = harness.wrk(gateway.url, script, seconds=seconds, connections=connections, core="1")
        proxied_one = harness.wrk(gateway.url, script, seconds=seconds / 2, connections=1, core="1")
    ratio = proxied.rps / direct.rps
    added = proxied_one.p50_ms - direct_one.p50_ms
    print(
        f"miss path: gateway {proxied.rps:.0f} req/s vs emulator {direct.rps:.0f} req/s; one at a time, median "
        f"{proxied_one.p50_ms:.3f} ms vs {direct_one.p50_ms:.3f} ms"
    )
    harness.report(
        "bench_miss",
        [
            Budget("miss requests/s vs the emulator's", round(ratio, 3), 0.70, True),
            Budget("added median latency", round(added, 3), 0.5, False, " ms"),
        ],
        {
            "settings": {"seconds": seconds, "connections": connections},
            "direct": asdict(direct) | {"rps": round(direct.rps)},
            "gateway": asdict(proxied) | {"rps": round(proxied.rps)},
            "direct_sequential": asdict(direct_one),
            "gateway_sequential": asdict(proxied_one),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="a few seconds: a smoke test, not a measurement")
    args = parser.parse_args()
    if args.quick:
        measure(seconds=1, connections=8, warmup=0)
    else:
        measure(args.seconds, args.connections)


if __name__ == "__main__":
    main()
