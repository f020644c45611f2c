"""Upstream client candidates, side by side: requests per second one core can forward through each,
with 1 and with 32 requests in flight, against the bare echo server on the other core.

    python -m loadtests.bench_clients [--requests 8000]

The gateway uses the fastest; the miss-path benchmark (loadtests/bench_miss.py) then shows the
gateway as a whole within its budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

from loadtests import harness

BODY = b'{"id":{"thirdPartyId":"kiosk-1"},"context":{"channel":"web"},"execute":{"mboxes":[]}}'
HEADERS = {"Host": "demo.tt.omtrdc.net", "Content-Type": "application/json"}


async def aiohttp_client(
    url: str, in_flight: int
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight))

    async def one() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()

    return one, session.close


async def httpx_client(url: str, in_flight: int) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=in_flight))

    async def one() -> None:
        (await client.post(url, content=BODY, headers=HEADERS)).read()

    return one, client.aclose


async def pyreqwest_client(
    url: str, in_flight: int
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().max_connections(in_flight).http1_only().build()

    async def one() -> None:
        response = await client.post(url).headers(HEADERS).body_bytes(BODY).build().send()
        await response.bytes()

    return one, client.close


CLIENTS = {"aiohttp": aiohttp_client, "httpx": httpx_client, "pyreqwest": pyreqwest_client}


async def rate(name: str, url: str, in_flight: int, total: int) -> float:
    one, close = await CLIENTS[name](url, in_flight)
    try:
        await one()
        started = time.perf_counter()

        async def worker() -> None:
            for _ in range(total // in_flight):
                await one()

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return (total // in_flight) * in_flight / (time.perf_counter() - started)
    finally:
        await close()


def child(name: str, url: str, total: int) -> None:
    import uvloop

    async def both() -> dict[str, float]:
        return {str(n): round(await rate(name, url, n, total)) for n in (1, 32)}

    print(json.dumps(uvloop.run(both())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.requests)
        return
    results = {}
    with harness.echo(core="1") as echo:
        for name in CLIENTS:
            command = harness.pinned(
                [
                    sys.executable,
                    "-m",
                    "loadtests.bench_clients",
                    "--requests",
                    str(args.requests),
                    "--child",
                    name,
                    echo.url + "/echo",
                ],
                "0",
            )
            import subprocess

            output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600).stdout
            results[name] = json.loads(output.strip().splitlines()[-1])
    print(json.dumps(results, indent=2))
    for name, figures in results.items():
        print(f"{name:10s} 1 in flight: {figures['1']:>6} req/s   32 in flight: {figures['32']:>6} req/s")


if __name__ == "__main__":
    main()
