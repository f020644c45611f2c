"""The edge's front door: counts Target API calls, remembers the last one per route (method, path,
query and headers, so tests can prove which credentials went upstream), limits concurrency per session,
injects faults.

Control calls (``/_emulator/*``) pass straight through, uncounted, unrecorded and never faulted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.emulator.checks import fail
from proxy.emulator.errors import document as error_body

MAX_CONCURRENT_PER_SESSION = 100
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/rest/v1/mbox/[^/]+/?$"), "mbox"),
    (re.compile(r"^/rest/v2/batchmbox/?$"), "batchmbox"),
    (re.compile(r"^/rest/v1/delivery/?$"), "delivery"),
    (re.compile(r"^/rest/v1/profiles/thirdPartyId/[^/]+/?$"), "profile_third_party"),
    (re.compile(r"^/rest/v1/profiles/[^/]+/?$"), "profile"),
    (re.compile(r"^/m2/[^/]+/profile/update/?$"), "profile_update"),
    (re.compile(r"^/m2/[^/]+/(v2/)?profile/batchUpdate/?$"), "profile_batch_update"),
    (re.compile(r"^/m2/[^/]+/v2/profile/batchStatus/?$"), "profile_batch_status"),
    (re.compile(r"^/ims/token/v3/?$"), "ims_token"),
    (re.compile(r"^/[^/_][^/]*/[^/]+/v1/([^/]+/)?rules\.json$"), "rules_artifact"),
    (re.compile(r"^/[^/_][^/]*/target/"), "admin"),
    (re.compile(r"^/data/core/activation/"), "activation"),
    (re.compile(r"^/data/core/ups/"), "ups"),
    (re.compile(r"^/data/core/ais/"), "external_audiences"),
    (re.compile(r"^/data/foundation/flowservice/"), "flowservice"),
]


def route_name(path: str) -> str | None:
    for pattern, name in _ROUTES:
        if pattern.match(path):
            return name
    return None


@dataclass(slots=True)
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    status: int = 503
    retry_after: int | None = None
    outage: bool = False
    reset_rate: float = 0.0
    slow_body_ms: float = 0.0

    @classmethod
    def parse(cls, body: Any) -> Faults:
        """Faults from a control request; absent fields are off. A bare ``status`` fails every call."""
        if not isinstance(body, dict):
            raise fail("body", "must be a JSON object")
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise fail(sorted(unknown)[0], "is not a fault setting")
        faults = cls()
        for name in ("latency_ms", "slow_body_ms"):
            value = body.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise fail(name, "must be a number >= 0")
            setattr(faults, name, float(value))
        for name in ("error_rate", "reset_rate"):
            value = body.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise fail(name, "must be a number between 0 and 1")
            setattr(faults, name, float(value))
        status = body.get("status", 503)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise fail("status", "must be an HTTP error status 400-599")
        faults.status = status
        if "status" in body and "error_rate" not in body:
            faults.error_rate = 1.0
        retry_after = body.get("retry_after")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise fail("retry_after", "must be a whole number of seconds >= 0")
        faults.retry_after = retry_after
        outage = body.get("outage", False)
        if not isinstance(outage, bool):
            raise fail("outage", "must be true or false")
        faults.outage = outage
        return faults

    def document(self) -> dict[str, Any]:
        return asdict(self)


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())


def _session_of(scope: Scope, route: str) -> str | None:
    if route == "mbox":
        return scope["path"].rstrip("/").rsplit("/", 1)[-1]
    if route == "delivery":
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sessionId")
        return values[0] if values else None
    return None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A call as it arrived; decoded only when asked for, so recording costs the hot path nothing."""

    route: str
    method: str
    path: str
    query: bytes
    raw_headers: list[tuple[bytes, bytes]]

    def document(self) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in self.raw_headers:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return {
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "query": self.query.decode("latin-1"),
            "headers": headers,
        }


class EdgeFrontDoor:
    def __init__(self, app: ASGIApp, requests: Counter[str], faults: Faults) -> None:
        self.app = app
        self.requests = requests
        self.faults = faults
        self._in_flight: Counter[str] = Counter()
        # route name -> the last call to it; "" -> the last call of all
        self.last_requests: dict[str, RecordedRequest] = {}

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults

    def set_requests(self, requests: Counter[str]) -> None:
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        route = route_name(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        self.requests[route] += 1
        self.last_requests[route] = self.last_requests[""] = RecordedRequest(
            route, scope["method"], scope["path"], scope.get("query_string", b""), scope.get("headers", [])
        )
        faults = self.faults
        if faults.outage or (faults.reset_rate and random.random() < faults.reset_rate):
            await _drop_connection(send)
            return
        session = _session_of(scope, route)
        if session is not None:
            if self._in_flight[session] >= MAX_CONCURRENT_PER_SESSION:
                await _send_json(send, 420, error_body(420, "Too many requests with same session ID"))
                return
            self._in_flight[session] += 1
        try:
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.error_rate and random.random() < faults.error_rate:
                headers = {"retry-after": str(faults.retry_after)} if faults.retry_after is not None else {}
                await _send_json(send, faults.status, error_body(faults.status, "injected fault"), headers)
                return
            if faults.slow_body_ms:
                send = _slow_sender(send, faults.slow_body_ms / 1000)
            await self.app(scope, receive, send)
        finally:
            if session is not None:
                self._in_flight[session] -= 1
                if not self._in_flight[session]:
                    del self._in_flight[session]


async def _send_json(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send) -> None:
    """Promise a body and close the connection before it comes: the client sees a broken answer."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})


def _slow_sender(send: Send, pause_s: float, chunk: int = 64) -> Send:
    async def slow(message: Message) -> None:
        if message["type"] != "http.response.body" or not message.get("body"):
            await send(message)
            return
        body, more = message["body"], message.get("more_body", False)
        for start in range(0, len(body), chunk):
            await asyncio.sleep(pause_s)
            last = start + chunk >= len(body)
            await send(
                {
                    "type": "http.response.body",
                    "body": body[start : start + chunk],
                    "more_body": more or not last,
                }
            )

    return slow
