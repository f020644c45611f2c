"""Serving an app built in the test process on a real loopback socket, for tests that inject parts
(a clock, say) into the gateway."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from proxy.http.server import bind, url_of


class InThread:
    """An app served by uvicorn in a thread of the test process, on a loopback socket of its own."""

    def __init__(self, app: Any) -> None:
        self.sock = bind("127.0.0.1", 0)
        config = uvicorn.Config(
            app, loop="asyncio", http="httptools", lifespan="on", access_log=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("in-process server did not start")
            time.sleep(0.01)
        self.url = url_of(self.sock)

    def stop(self) -> None:
        self.server.should_exit = True

    def join(self) -> None:
        self.thread.join(10)
        self.sock.close()


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    served = InThread(app)
    try:
        yield served.url
    finally:
        served.stop()
        served.join()


@contextlib.contextmanager
def serving_many() -> Iterator[Callable[[Any], str]]:
    """``serve(app) -> url`` for as many apps as a test needs; all of them are stopped together at the
    end (each takes a tick of its loop to notice)."""
    served: list[InThread] = []

    def serve(app: Any) -> str:
        served.append(InThread(app))
        return served[-1].url

    try:
        yield serve
    finally:
        for each in served:
            each.stop()
        for each in served:
            each.join()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
