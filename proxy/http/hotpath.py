"""A thin ASGI layer for the delivery routes, in front of the Starlette application (and the ASGI
entry point of the gateway).

Every delivery call passes here, so it skips what it does not need of Starlette's request, response,
routing and middleware objects (measured at about a third of a cached answer's time); every other
path goes to the Starlette app unchanged. Errors are the same JSON documents either way.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.http.errors import ANSWERED, ApiError, answer_for, error_body
from proxy.http.observed import Observed

logger = logging.getLogger("proxy.errors")


@dataclass(slots=True)
class Incoming:
    """What a delivery handler needs of a request."""

    path: str
    path_param: str | None
    query_string: str
    headers: dict[str, str]
    client_host: str | None
    body: bytes
    _query: dict[str, str] | None = field(default=None, repr=False)
    # For the request log: how the cache answered, and for whom.
    cache: str | None = None
    visitor: str | None = None

    def query_value(self, name: str) -> str | None:
        """A query parameter percent-decoded as a path segment is ("+" stays "+"): for values that are
        also sent in paths (session ids), so that both forms follow one rule."""
        prefix = name + "="
        for part in self.query_string.split("&"):
            if part.startswith(prefix):
                return unquote(part[len(prefix) :])
        return None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = parse_query(self.query_string)
        return self._query


@dataclass(slots=True)
class Outgoing:
    status: int
    body: bytes
    headers: dict[str, str] | None = None


Handler = Callable[[Incoming], Awaitable[Outgoing]]
# method, route, status, seconds, cache outcome, visitor, request id
Observer = Callable[[Observed], None]

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_SCOPE_KEY = "target_proxy.request_id"
# An incoming X-Request-Id is kept when it is 1-128 visible ASCII characters; else the gateway makes one.
ACCEPTED_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


class RequestIds:
    """Ids for requests that bring none: a random prefix per process and a counter (unique across
    workers and restarts, and cheaper than a UUID per request)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6) + "-"
        self._counter = itertools.count(1)

    def of(self, given: str | None) -> str:
        if given is not None and ACCEPTED_REQUEST_ID.fullmatch(given):
            return given
        return f"{self._prefix}{next(self._counter):x}"


def request_id_header(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return str(value.decode("latin-1"))
    return None


def parse_query(query: str) -> dict[str, str]:
    """``a=1&b=x%20y`` -> ``{"a": "1", "b": "x y"}``; decoding only the parts that need it."""
    if not query:
        return {}
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    found = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            found[name] = value
    return found


class HotPaths:
    """Exact paths and one-segment prefixes (``/rest/v1/mbox/{sessionId}``) for POST handlers."""

    def __init__(
        self,
        fallback: ASGIApp,
        max_body_bytes: int,
        observe: Observer,
        limits: RequestLimits | None = None,
        state: Any = None,
    ) -> None:
        self.fallback = fallback
        self.max_body_bytes = max_body_bytes
        self.observe = observe
        self.limits = limits or RequestLimits()
        self.in_flight = 0
        self.ids = RequestIds()
        self.state = state  # the application's state, for whoever holds the entry point
        self._exact: dict[str, tuple[Handler, str]] = {}
        self._prefixes: dict[str, tuple[Handler, str]] = {}

    def exact(self, path: str, handler: Handler, route: str) -> None:
        self._exact[path] = (handler, route)

    def prefix(self, prefix: str, handler: Handler, route: str) -> None:
        self._prefixes[prefix] = (handler, route)

    def routes(self) -> set[str]:
        """The route templates this answers (POST), for the OpenAPI document's checks."""
        return {route for _, route in (*self._exact.values(), *self._prefixes.values())}

    def _match(self, scope: Scope) -> tuple[Handler, str, str | None] | None:
        path: str = scope["path"]
        found = self._exact.get(path)
        if found is not None:
            return found[0], found[1], None
        # The last segment is taken from the path as sent and decoded here, so that an encoded "/" in it
        # (a%2Fb) is that segment's character, checked like any other, not a path separator.
        raw = scope.get("raw_path") or path.encode()
        head, slash, tail = raw.decode("latin-1").rpartition("/")
        if slash and tail:
            found = self._prefixes.get(unquote(head) + "/")
            if found is not None:
                return found[0], found[1], unquote(tail)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        refusal = self.limits.refusal(scope, self.in_flight)
        if refusal is not None:
            request_id = self.ids.of(request_id_header(scope))
            await respond(send, refusal, request_id)
            self.observe(Observed(scope["method"], "refused", refusal.status, 0.0, None, None, request_id))
            return
        self.in_flight += 1
        try:
            await self._dispatch(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope) if scope["method"] == "POST" else None
        if matched is None:
            scope[REQUEST_ID_SCOPE_KEY] = self.ids.of(request_id_header(scope))
            await self.fallback(scope, receive, send)
            return
        handler, route, path_param = matched
        started = time.perf_counter()
        incoming = None
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        request_id = self.ids.of(headers.get("x-request-id"))
        try:
            body = await self._read_body(headers, receive)
            client = scope.get("client")
            incoming = Incoming(
                scope["path"],
                path_param,
                scope["query_string"].decode("latin-1"),
                headers,
                client[0] if client else None,
                body,
            )
            outgoing = await handler(incoming)
        except ANSWERED as exc:
            error = answer_for(exc)
            outgoing = Outgoing(error.status, error_body(error.status, error.message, error.field), error.headers)
        except Exception:
            logger.exception("unhandled error on POST %s", scope["path"])
            outgoing = Outgoing(500, error_body(500, "internal error"))
        try:
            await respond(send, outgoing, request_id)
        finally:
            cache, visitor = (incoming.cache, incoming.visitor) if incoming is not None else (None, None)
            elapsed = time.perf_counter() - started
            self.observe(Observed("POST", route, outgoing.status, elapsed, cache, visitor, request_id))

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length")
        limit = self.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"request body exceeds {limit} bytes", "body")
        chunks = []
        size = 0
        # A client that sends its body slowly is answered 408 by the connection's protocol (proxy.http.protocol).
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone (or timed out) before its body was complete
                raise ApiError(400, "body: the client went away before sending all of it", "body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body exceeds {limit} bytes", "body")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


JSON_TYPES = ("application/json", "text/plain")


@dataclass(slots=True)
class RequestLimits:
    """What any request must keep within, checked before anything else is done with it (the size and
    arrival time of its head are bounded earlier, by ``proxy.http.protocol``)."""

    max_in_flight: int = 4096
    body_timeout_s: float = 10.0

    def refusal(self, scope: Scope, in_flight: int) -> Outgoing | None:
        if in_flight >= self.max_in_flight:
            return Outgoing(503, error_body(503, "too many requests in progress; try again"), {"Retry-After": "1"})
        if scope["method"] == "POST" and _json_routes(scope["path"]):
            for name, value in scope["headers"]:
                if name == b"content-type":
                    media = value.split(b";", 1)[0].strip().lower().decode("latin-1")
                    if media not in JSON_TYPES and not media.endswith("+json"):
                        message = f"Content-Type: {media or 'empty'} is not JSON (send application/json)"
                        return Outgoing(415, error_body(415, message, "Content-Type"))
                    break
        return None


def _json_routes(path: str) -> bool:
    """Paths whose bodies are JSON: the delivery APIs (the others are checked where they are read)."""
    return path.startswith(("/rest/v1/mbox", "/rest/v2/batchmbox", "/rest/v1/delivery"))


async def respond(send: Send, outgoing: Outgoing, request_id: str) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(outgoing.body)).encode()),
        (REQUEST_ID_HEADER, request_id.encode("latin-1")),
    ]
    if outgoing.headers:
        raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in outgoing.headers.items())
    await send({"type": "http.response.start", "status": outgoing.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": outgoing.body})
