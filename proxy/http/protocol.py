"""uvicorn's httptools protocol with the limits a public gateway needs on every connection.

uvicorn bounds neither the size of a request's head nor the time a client takes to send it or its body,
and a connection that never sends a byte is kept until the client goes away. Here a request head must
arrive within ``header_timeout_s`` of the connection opening (or of its request starting) and stay within
``max_header_bytes``, and its body must arrive within ``body_timeout_s`` of its head; past either the
client gets a JSON 408 or 431 and the connection is closed. Between requests a connection may stay idle,
or send what starts no request (a stray CRLF, the rest of a body answered early, a body dripping after
an answer), for ``header_timeout_s`` at most: then it is closed, whatever it keeps sending.

The deadlines are plain numbers on each connection, checked a few times a second by one sweep over the
server's connections: arming and cancelling a timer for every request would cost the hot path more
than the requests it guards against.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.http.errors import error_body

REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; the parser turns it into HttpParserError."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self, *args: Any, max_header_bytes: int, header_timeout_s: float, body_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self._head_bytes = 0
        self._head_started = False
        self._deadline: float | None = None  # loop time by which the awaited part must have arrived
        self._awaited = "headers"
        self._refusal: tuple[int, str, str] | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._deadline = self.loop.time() + self.header_timeout_s
        self._awaited = "headers"
        sweep_connections_of(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_started = True
        self._deadline = self.loop.time() + self.header_timeout_s
        self._awaited = "headers"

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_started = False
        self._deadline = self.loop.time() + self.body_timeout_s
        self._awaited = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self.cycle is None or not self.cycle.response_complete:
            self._deadline = None  # the answer's completion arms the next deadline
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self._head_started or self.cycle is None:
            return  # closed, or the next request's head is on its way under its own deadline
        if self.cycle.response_complete:
            # Idle from now on, or still sending a body answered early (whose rest is of no use): either
            # way the client has header_timeout_s to start its next request, and bytes that start none
            # do not buy it more time.
            self._deadline = self.loop.time() + self.header_timeout_s
            self._awaited = "next request"

    def send_400_response(self, msg: str) -> None:
        # What uvicorn answers in plain text (a request that is not HTTP) is JSON here like every other
        # error, and a refusal raised from a callback reaches here as a parse error: answer it as what it is.
        self._deadline = None
        self._refuse(*(self._refusal or (400, "malformed HTTP request", "request")))

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._refusal = (431, f"request head exceeds {self.max_header_bytes} bytes", "headers")
            raise HeadTooLarge

    def check_deadline(self, now: float) -> None:
        if self._deadline is None or now < self._deadline or self.transport.is_closing():
            return
        self._deadline = None
        if self._awaited == "body":
            if self.cycle is not None and not self.cycle.response_started:
                self._refuse(408, "body: not received in time", "body")
            # else the answer is on its way; its completion arms the next deadline
        elif self._awaited == "next request":
            self.transport.close()  # the previous one was answered, and no other has begun
        elif self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind a request still being answered: wait for that one.
            self._deadline = now + self.header_timeout_s
        elif self._head_started:
            self._refuse(408, "request head not received in time", "headers")
        else:
            self.transport.close()  # nothing was asked: nobody to answer

    def _refuse(self, status: int, message: str, field: str) -> None:
        body = error_body(status, message, field)
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        if not self.transport.is_closing():
            self.transport.write(head % (status, REASONS[status], len(body)) + body)
            self.transport.close()


def sweep_connections_of(protocol: GuardedHttpToolsProtocol) -> None:
    """Start checking the deadlines of every connection of the protocol's server, once per server."""
    state = protocol.server_state
    if getattr(state, "deadline_sweep", False):
        return
    setattr(state, "deadline_sweep", True)  # noqa: B010 (uvicorn's ServerState has no such field)
    loop = protocol.loop
    interval = min(1.0, max(0.05, min(protocol.header_timeout_s, protocol.body_timeout_s) / 4))

    def sweep() -> None:
        now = loop.time()
        for connection in list(state.connections):
            if isinstance(connection, GuardedHttpToolsProtocol):
                connection.check_deadline(now)
        loop.call_later(interval, sweep)

    loop.call_later(interval, sweep)
