"""A connection is closed once it has been idle, or has sent nothing that starts a request, for
``header_timeout_seconds``: after a served request, an early 413 or 401, whatever the client then sends
(one CRLF, one stray byte, a body dripping a byte at a time, nothing). Every combination runs at once on
its own connection, against the gateway's real server."""

from __future__ import annotations

import itertools
import socket
import threading
import time

from tests.hardening.conftest import TIMEOUT_S
from tests.hardening.test_abuse import connect
from tests.servers import ServerProcess

SLACK_S = 1.5  # the deadline sweep's interval and a loaded two-core machine
FORM = "application/x-www-form-urlencoded"
# What a client asks first: (request head and the part of its body it sends, the status it is answered).
FIRST = {
    "served GET": (b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n", 200),
    "GET with a body to come": (b"GET /healthz HTTP/1.1\r\nhost: gw\r\ncontent-length: 100000\r\n\r\nx", 200),
    "early 413": (
        b"POST /rest/v1/mbox?client=demo HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        b"content-length: 900000000\r\n\r\n{",
        413,
    ),
    "early 401": (
        b"POST /m2/demo/profile/update?mbox3rdPartyId=v HTTP/1.1\r\nhost: gw\r\ncontent-type: " + FORM.encode()
        + b"\r\ncontent-length: 100000\r\n\r\nprofile.a=1",
        401,
    ),
}  # fmt: skip
# What it does after the answer: bytes to send, at what interval, how many times.
THEN = {
    "nothing": (b"", 0.0, 0),
    "one CRLF": (b"\r\n", 0.0, 1),
    "one stray byte": (b"x", 0.0, 1),
    "a byte at a time": (b"x", TIMEOUT_S / 4, 40),
    "CRLFs at a time": (b"\r\n", TIMEOUT_S / 4, 40),
}


def answer_status(sock: socket.socket) -> int:
    """Read one whole answer (its head, then content-length bytes of body); its status."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {raw!r}"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside an answer"
        body += chunk
    return int(head.split(b" ", 2)[1])


def held_for(url: str, first: bytes, then: tuple[bytes, float, int]) -> tuple[int, float]:
    """The status of the first answer, and how long after it the server kept the connection."""
    extra, interval, times = then
    with connect(url) as sock:
        sock.sendall(first)
        status = answer_status(sock)
        answered = time.monotonic()
        dripping = threading.Event()

        def drip() -> None:
            for _ in range(times):
                try:
                    sock.sendall(extra)
                except OSError:
                    return
                if dripping.wait(interval):
                    return

        sender = threading.Thread(target=drip, daemon=True)
        sender.start()
        try:
            while sock.recv(65536):  # nothing more is sent: wait for the server's close
                pass
        except ConnectionResetError:
            pass  # closed while bytes it had not read were waiting: closed all the same
        dripping.set()
        sender.join()
        return status, time.monotonic() - answered


def test_no_connection_outlives_the_header_timeout_after_its_answer(guarded: ServerProcess) -> None:
    cases = list(itertools.product(FIRST, THEN))
    results: dict[tuple[str, str], tuple[int, float]] = {}

    def run(case: tuple[str, str]) -> None:
        results[case] = held_for(guarded.url, FIRST[case[0]][0], THEN[case[1]])

    threads = [threading.Thread(target=run, args=(case,)) for case in cases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert set(results) == set(cases), "a connection was still open after 30 s"
    for (first, then), (status, held) in results.items():
        assert status == FIRST[first][1], (first, then, status)
        assert held < TIMEOUT_S + SLACK_S, f"{first}, then {then}: held {held:.1f} s"


def test_a_connection_that_keeps_asking_in_time_is_kept(guarded: ServerProcess) -> None:
    """The idle deadline starts after each answer: requests each under the timeout apart share one
    connection for longer than the timeout."""
    with connect(guarded.url) as sock:
        started = time.monotonic()
        for _ in range(4):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
            assert answer_status(sock) == 200
            time.sleep(TIMEOUT_S / 2)
        assert time.monotonic() - started > TIMEOUT_S * 1.5
