"""A small TCP load balancer for the benchmarks: each client connection goes to the next backend in turn
(round-robin), and bytes are copied both ways until either side closes.

    python -m loadtests.roundrobin [--port 0] HOST:PORT [HOST:PORT ...]

Prints ``target-proxy balancer listening on http://127.0.0.1:PORT``. uvloop, asyncio protocols (no streams):
as thin as a balancer in Python gets, and the same in front of one backend as in front of two.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
from collections.abc import Iterator

import uvloop


class Upstream(asyncio.Protocol):
    """The balancer's connection to a backend: what it sends goes to the client."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.client.transport is not None:
            self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client.transport is not None:
            self.client.transport.close()


class Client(asyncio.Protocol):
    """A client's connection: what it sends goes to its backend (kept until the backend connects)."""

    def __init__(self, backends: Iterator[tuple[str, int]]) -> None:
        self.backends = backends
        self.transport: asyncio.Transport | None = None
        self.upstream: Upstream | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        asyncio.get_running_loop().create_task(self.connect(*next(self.backends)))

    async def connect(self, host: str, port: int) -> None:
        try:
            _, upstream = await asyncio.get_running_loop().create_connection(lambda: Upstream(self), host, port)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        self.upstream = upstream
        assert upstream.transport is not None
        if self.early:
            upstream.transport.write(b"".join(self.early))
            self.early.clear()
        if self.transport is None or self.transport.is_closing():
            upstream.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()
        self.transport = None


async def serve(port: int, backends: list[tuple[str, int]]) -> None:
    rotation = itertools.cycle(backends)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await asyncio.get_running_loop().create_server(lambda: Client(rotation), sock=sock, backlog=2048)
    print(f"target-proxy balancer listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def address(text: str) -> tuple[str, int]:
    text = text.removeprefix("http://").rstrip("/")
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("backends", nargs="+", type=address, help="HOST:PORT (or http://HOST:PORT) of each backend")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.backends))


if __name__ == "__main__":
    main()
