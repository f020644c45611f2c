"""The connection limits of ``proxy.http.protocol``, on a uvicorn server in this process with short
deadlines, over raw sockets: the head's size, the head's and the body's time, idle connections."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import orjson
import pytest
import uvicorn

from proxy.http.protocol import GuardedHttpToolsProtocol
from proxy.http.server import bind

TIMEOUT_S = 0.4


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"got %d" % len(body)
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(
        echo_app,
        loop="asyncio",
        http=partial(  # type: ignore[arg-type]
            GuardedHttpToolsProtocol, max_header_bytes=1024, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S
        ),
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    yield sock.getsockname()[:2]
    server.should_exit = True
    thread.join(10)
    sock.close()


@contextlib.contextmanager
def connected(address: tuple[str, int]) -> Iterator[socket.socket]:
    with socket.create_connection(address, timeout=5) as conn:
        yield conn


def read_all(conn: socket.socket) -> bytes:
    """Everything until the server closes the connection (within 5 s)."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_answer(conn: socket.socket) -> bytes:
    """One answer on a kept connection: its head, then as many bytes of body as it says."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += conn.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += conn.recv(65536)
    return body


def answer_of(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), orjson.loads(body)


def test_a_request_within_the_limits_is_answered_and_the_connection_kept(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        for _ in range(2):
            conn.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
            assert read_answer(conn) == b"got 3"


def test_a_head_over_its_size_is_431_naming_the_headers(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 2000 + b"\r\n\r\n")
        status, body = answer_of(read_all(conn))
    assert status == 431 and body["field"] == "headers"


def test_a_head_that_does_not_arrive_in_time_is_408(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n")  # and never the blank line
        started = time.monotonic()
        status, body = answer_of(read_all(conn))
    assert status == 408 and body["field"] == "headers"
    assert time.monotonic() - started < TIMEOUT_S + 2


def test_a_body_that_does_not_arrive_in_time_is_408_naming_the_body(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly part")
        status, body = answer_of(read_all(conn))
    assert status == 408 and body["field"] == "body"


def test_a_connection_that_asks_nothing_is_closed_without_an_answer(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        assert read_all(conn) == b""


def test_bytes_that_start_no_request_do_not_keep_an_idle_connection(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        assert read_answer(conn) == b"got 0"
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - started < TIMEOUT_S * 5:
                conn.sendall(b"\r\n")  # a stray CRLF, again and again
                time.sleep(TIMEOUT_S / 8)
        assert time.monotonic() - started < TIMEOUT_S * 5, "closed within its idle time, whatever it sent"


def test_what_is_not_http_is_a_json_400(address: tuple[str, int]) -> None:
    with connected(address) as conn:
        conn.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        status, body = answer_of(read_all(conn))
    assert status == 400 and body["field"] == "request"
