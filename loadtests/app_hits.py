"""CPU time of the gateway's application per cache hit, in this process, without sockets.

    python -m loadtests.app_hits EMULATOR_URL [--visitors 500] [--repeats 9]

Run with a source tree's folder first on ``sys.path`` (``bench_trees --in-process`` does), it builds that
tree's application (``proxy.app.create_app``) against the emulator, starts it as uvicorn would (lifespan),
warms ``visitors`` visitors with one miss each, then drives their cached single mbox views through the
application's ASGI entry point, ``repeats`` times. It prints one JSON line: the CPU microseconds per hit of
the fastest repeat (the one least disturbed by the rest of the machine) and of each repeat. The HTTP server,
the load generator and the emulator do not run during the repeats, so this measures the gateway's own code
alone; the access log and the notification flusher are held off (their costs are the same for any tree).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from typing import Any

import uvloop

BODY = b'{"mbox":"%s","tntId":"visitor-%d"}'
MBOX = b"home-hero"


async def measure(emulator_url: str, visitors: int, repeats: int) -> dict[str, Any]:
    os.environ["TARGET_PROXY_NOTIFICATION_STORE"] = tempfile.mkdtemp(prefix="app-hits-")
    os.environ["TARGET_PROXY_ACCESS_LOG"] = "false"
    os.environ["TARGET_PROXY_NOTIFICATION_MAX_DELAY_MS"] = "3600000"
    os.environ["TARGET_PROXY_SHUTDOWN_GRACE_SECONDS"] = "0"
    import proxy  # the tree's, from the front of sys.path
    from proxy.app import create_app
    from proxy.settings import Settings

    app = create_app(Settings(upstream=emulator_url, client="demo"))
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def life_send(message: dict[str, Any]) -> None:
        started.set()

    await lifespan.put({"type": "lifespan.startup"})
    running = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan.get, life_send))
    await asyncio.wait_for(started.wait(), 30)

    async def view(body: bytes) -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/rest/v1/mbox",
            "raw_path": b"/rest/v1/mbox",
            "query_string": b"client=demo",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
        }
        await app(scope, receive, send)
        return int(sent[0]["status"])

    bodies = [BODY % (MBOX, visitor) for visitor in range(visitors)]
    for body in bodies:  # each visitor's miss: its session, and its content in the cache
        if await view(body) != 200:
            raise RuntimeError("a miss failed")
    per_hit = []
    for _ in range(repeats):
        gc.collect()
        before = time.process_time()
        for body in bodies * 4:
            await view(body)
        per_hit.append((time.process_time() - before) / (4 * visitors) * 1e6)
        await asyncio.sleep(0.05)  # the notification log's writes of this repeat
    await lifespan.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(running, 60)
    return {"hit_us": min(per_hit), "repeats_us": [round(value, 2) for value in per_hit], "tree": proxy.__file__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("emulator_url")
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(measure(args.emulator_url, args.visitors, args.repeats))), flush=True)


if __name__ == "__main__":
    main()
