"""Hostile clients against a gateway process (its real server, so the limits on request heads apply):
huge or slow heads and bodies, wrong content types, broken encodings, deep JSON, too many calls on one
key, too many requests at once, and keyed routes without a key. Each gets a JSON 4xx (or 503) naming
what was wrong, and nothing reaches the edge."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.conftest import OPERATOR_KEY, PROFILE_KEY
from tests.gateways import own_gateway
from tests.hardening.conftest import RATE, RATED_KEY, TIMEOUT_S
from tests.notifications.helpers import faults, new_visitor, stats
from tests.servers import ServerProcess
from tests.support import Call, post_concurrently

VIEW = b'{"mbox": "home-hero", "thirdPartyId": "abuser"}'


@pytest.fixture
def client(guarded: ServerProcess, emulator: httpx.Client) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, timeout=10) as client:
        yield client


def connect(url: str) -> socket.socket:
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of the one answer on a connection the server then closes."""
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, orjson.loads(body)


def assert_refused(status: int, body: dict[str, Any], expected: int, field: str) -> None:
    assert status == expected, body
    assert body["status"] == expected and body["field"] == field, body


def upstream_calls(emulator: httpx.Client) -> int:
    return sum(stats(emulator)["requests"].values())


# --- request heads ----------------------------------------------------------------------------------


def test_a_huge_head_gets_431_and_the_connection_closes(guarded: ServerProcess, emulator: httpx.Client) -> None:
    with connect(guarded.url) as sock:
        filler = b"".join(b"x-filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(40))
        sock.sendall(b"POST /rest/v1/mbox?client=demo HTTP/1.1\r\nhost: gw\r\n" + filler + b"\r\n")
        status, headers, body = read_answer(sock)
    assert_refused(status, body, 431, "headers")
    assert headers["connection"] == "close"
    assert upstream_calls(emulator) == 0


def test_a_huge_request_line_gets_431(guarded: ServerProcess) -> None:
    with connect(guarded.url) as sock:
        sock.sendall(b"GET /healthz?" + b"q" * 20_000 + b" HTTP/1.1\r\nhost: gw\r\n\r\n")
        status, _, body = read_answer(sock)
    assert_refused(status, body, 431, "headers")


def test_a_head_sent_slowly_gets_408(guarded: ServerProcess) -> None:
    with connect(guarded.url) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /rest/v1/mbox?client=demo HTTP/1.1\r\nhost: gw\r\n")
        for _ in range(3):  # a header every so often, never the end of the head
            time.sleep(TIMEOUT_S / 2)
            try:
                sock.sendall(b"x-drip: 1\r\n")
            except OSError:
                break
        status, _, body = read_answer(sock)
        assert time.monotonic() - started < TIMEOUT_S + 1.5
    assert_refused(status, body, 408, "headers")


def test_a_connection_that_never_asks_is_closed(guarded: ServerProcess) -> None:
    with connect(guarded.url) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert TIMEOUT_S - 0.2 < time.monotonic() - started < TIMEOUT_S + 1.5


def test_a_kept_alive_connection_serves_request_after_request(client: httpx.Client) -> None:
    """The head timer is per request: a client that keeps asking in time keeps its connection."""
    for _ in range(4):
        assert client.get("/healthz").status_code == 200
        time.sleep(TIMEOUT_S / 3)


# --- request bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/rest/v1/mbox?client=demo", {"content-type": "application/json"}),
        (
            "/m2/demo/profile/update?mbox3rdPartyId=abuser",
            {"content-type": "application/x-www-form-urlencoded", "authorization": f"Bearer {PROFILE_KEY}"},
        ),
    ],
    ids=["delivery", "profile-form"],
)
def test_a_body_sent_slowly_gets_408(
    guarded: ServerProcess, emulator: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    with connect(guarded.url) as sock:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall(f"POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-length: 100\r\n{head}\r\n".encode())
        sock.sendall(b'{"mbox": ')
        status, _, body = read_answer(sock)
    assert_refused(status, body, 408, "body")
    assert upstream_calls(emulator) == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/rest/v1/mbox?client=demo", {}),
        ("/rest/v1/delivery?client=demo&sessionId=s1", {}),
        ("/m2/demo/profile/update?mbox3rdPartyId=abuser", {"authorization": f"Bearer {PROFILE_KEY}"}),
    ],
    ids=["single-mbox", "delivery", "profile-form"],
)
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
def test_an_oversized_body_gets_413(
    client: httpx.Client, emulator: httpx.Client, path: str, headers: dict[str, str], declared: bool
) -> None:
    payload = b"a=" + b"b" * (2 * 1024 * 1024)
    content: Any = payload if declared else iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)])
    content_type = "application/x-www-form-urlencoded" if "profile" in path else "application/json"
    answer = client.post(path, content=content, headers={"content-type": content_type, **headers})
    assert_refused(answer.status_code, answer.json(), 413, "body")
    assert upstream_calls(emulator) == 0


@pytest.mark.parametrize(
    "content_type", ["text/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "image/png"]
)
@pytest.mark.parametrize("path", ["/rest/v1/mbox?client=demo", "/rest/v2/batchmbox", "/rest/v1/delivery?client=demo"])
def test_a_delivery_body_that_is_not_json_gets_415(
    client: httpx.Client, emulator: httpx.Client, path: str, content_type: str
) -> None:
    answer = client.post(path, content=VIEW, headers={"content-type": content_type})
    assert_refused(answer.status_code, answer.json(), 415, "Content-Type")
    assert upstream_calls(emulator) == 0


def test_json_with_a_charset_or_a_json_suffix_is_taken(client: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.adobe.target+json", "text/plain"):
        answer = client.post("/rest/v1/mbox?client=demo", content=VIEW, headers={"content-type": content_type})
        assert answer.status_code == 200, (content_type, answer.text)


@pytest.mark.parametrize(
    "body",
    [
        b'{"mbox": "home-\xff\xfe", "thirdPartyId": "abuser"}',
        b'{"mbox": "home-hero", "thirdPartyId": "\xc3"}',
        b'{"mbox": "home-hero", "thirdPartyId": "\\ud800"}',
        b"\xef\xbb\xbf\x00\x00",
    ],
    ids=["invalid-bytes", "truncated-sequence", "lone-surrogate", "bom-and-nulls"],
)
def test_invalid_utf8_gets_400_naming_the_body(client: httpx.Client, emulator: httpx.Client, body: bytes) -> None:
    answer = client.post("/rest/v1/mbox?client=demo", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "body"
    assert upstream_calls(emulator) == 0


def test_invalid_utf8_in_a_form_gets_400(client: httpx.Client, emulator: httpx.Client) -> None:
    answer = client.post(
        "/m2/demo/profile/update?mbox3rdPartyId=abuser",
        content=b"profile.name=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded", "authorization": f"Bearer {PROFILE_KEY}"},
    )
    assert_refused(answer.status_code, answer.json(), 400, "body")
    assert upstream_calls(emulator) == 0


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_json_nested_past_the_parsers_limit_gets_400(client: httpx.Client, emulator: httpx.Client, depth: int) -> None:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    for path, body in [
        ("/rest/v1/mbox?client=demo", b'{"mbox": "home-hero", "extra": ' + nested + b"}"),
        ("/rest/v1/delivery?client=demo", b'{"context": {"channel": "web"}, "execute": ' + nested + b"}"),
        ("/rest/v2/batchmbox", nested),
    ]:
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
        assert_refused(answer.status_code, answer.json(), 400, "body")
    assert upstream_calls(emulator) == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/rest/v1/mbox?client=demo",
            {"mbox": "home-hero", "mboxParameters": {"a": {"b": {"c": 1}}}},
            "mboxParameters.a",
        ),
        (
            "/rest/v1/delivery?client=demo",
            {
                "context": {"channel": "web"},
                "execute": {"mboxes": [{"index": 0, "name": "x", "parameters": {"a": [[1]]}}]},
            },
            "execute.mboxes[0].parameters.a",
        ),
        (
            "/rest/v2/batchmbox",
            {"client": "demo", "mboxes": [{"indexId": 0, "mbox": "x", "parameters": {"a": {"b": 1}}}]},
            "mboxes[0].parameters.a",
        ),
    ],
    ids=["single-mbox", "delivery", "batch"],
)
def test_nesting_where_a_field_holds_plain_values_gets_400_naming_it(
    client: httpx.Client, emulator: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    answer = client.post(path, json=body)
    assert_refused(answer.status_code, answer.json(), 400, field)
    assert upstream_calls(emulator) == 0


# --- keys, rates and load -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/acme/target/activities"),
        ("POST", "/acme/target/offers/content"),
        ("GET", "/data/core/ups/segment/jobs"),
        ("POST", "/data/core/activation/disflowprovider/adhocrun"),
        ("POST", "/m2/demo/profile/update?mbox3rdPartyId=abuser"),
        ("POST", "/m2/demo/v2/profile/batchUpdate"),
        ("GET", "/_proxy/status"),
        ("DELETE", "/_proxy/cache"),
        ("GET", "/_proxy/queue"),
    ],
)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-key-of-this-gateway", "Basic dXNlcjpwYXNz", f"bearer{PROFILE_KEY}"]
)
def test_keyed_routes_are_closed_without_a_key(
    client: httpx.Client, emulator: httpx.Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    answer = client.request(method, path, headers=headers, content=b"{}")
    assert_refused(answer.status_code, answer.json(), 401, "Authorization")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert upstream_calls(emulator) == 0


def test_a_key_past_its_rate_gets_429_with_retry_after(client: httpx.Client) -> None:
    rated = {"authorization": f"Bearer {RATED_KEY}"}
    answers = [client.get("/_proxy/queue", headers=rated) for _ in range(RATE + 5)]
    assert [a.status_code for a in answers] == [200] * RATE + [429] * 5
    refused = answers[-1]
    assert refused.json()["status"] == 429 and refused.json()["field"] == "Authorization"
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    # Other keys have their own allowance.
    assert client.get("/_proxy/queue", headers={"authorization": f"Bearer {OPERATOR_KEY}"}).status_code == 200


def test_requests_past_the_in_flight_bound_get_503_with_retry_after(
    gateway_settings: dict[str, object], emulator: httpx.Client
) -> None:
    faults(emulator, latency_ms=300)
    with own_gateway(gateway_settings, max_in_flight=4) as gw:
        calls = [Call("/rest/v1/mbox", {"mbox": "home-hero", "thirdPartyId": new_visitor()}, {"client": "demo"})] * 12
        answers = post_concurrently(gw.url, calls, concurrency=12)
        statuses = sorted(a.status for a in answers)
        assert statuses.count(200) >= 4 and 503 in statuses, statuses
        assert set(statuses) <= {200, 503}
        refused = next(a for a in answers if a.status == 503)
        assert refused.headers["Retry-After"] == "1" and refused.body["status"] == 503
        # Once the load passes, everything is answered again.
        faults(emulator)
        assert gw.client.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero"}).status_code == 200
