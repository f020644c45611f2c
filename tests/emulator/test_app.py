"""The emulator app as a whole: JSON errors for unknown paths and methods, body size limits."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.emulator.support import stats

SIXTY_MB = 60 * 1024 * 1024
FIFTY_MB = 50 * 1024 * 1024


def claim_body_of(base_url: str, path: str, length: int) -> tuple[int, dict]:
    """Send only the headers of a POST announcing a ``length``-byte body; the status and JSON answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode()
        )
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


@pytest.mark.parametrize(
    ("path", "limit", "field"),
    [
        ("/rest/v1/mbox/s1?client=demo", SIXTY_MB, "body"),
        ("/rest/v2/batchmbox", SIXTY_MB, "body"),
        ("/rest/v1/delivery?client=demo&sessionId=s1", SIXTY_MB, "body"),
        ("/m2/demo/v2/profile/batchUpdate", FIFTY_MB, "batch"),
    ],
)
def test_a_body_over_the_limit_is_refused_before_it_is_read(
    emulator_url: str, path: str, limit: int, field: str
) -> None:
    status, body = claim_body_of(emulator_url, path, limit + 1)

    assert status == 413
    assert body["status"] == 413 and body["field"] == field


def test_unknown_paths_answer_json_404_and_are_not_counted(emulator: httpx.Client) -> None:
    response = emulator.get("/rest/v9/nothing")

    assert response.status_code == 404
    assert response.json() == {"status": 404, "message": "Not Found", "field": "path"}
    assert stats(emulator)["requests"] == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/rest/v1/delivery"), ("GET", "/rest/v2/batchmbox"), ("DELETE", "/rest/v1/profiles/1-1")],
)
def test_wrong_methods_answer_json_405(emulator: httpx.Client, method: str, path: str) -> None:
    response = emulator.request(method, path)

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == 405
