"""uvicorn's httptools protocol with the limits a public gateway needs on every connection.

uvicorn bounds neither the size of a request's head nor the time a client takes to send it, and a
connection that never sends a byte is kept until the client goes away. Here a request head must arrive
within ``header_timeout_s`` of the connection opening (or of its previous request starting) and stay
within ``max_header_bytes``; past either the client gets a JSON 408 or 431 and the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.errors import error_body


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; the parser turns it into HttpParserError."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, max_header_bytes: int, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout_s = header_timeout_s
        self._head_bytes = 0
        self._head_started = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_started = True
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_started = False
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # What uvicorn answers in plain text (a request that is not HTTP) is JSON here like every other
        # error, and a refusal raised from a callback reaches here as a parse error: answer it as what it is.
        self._disarm()
        self._refuse(*(self._refusal or (400, "malformed HTTP request", "request")))

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._refusal = (431, f"request head exceeds {self.max_header_bytes} bytes", "headers")
            raise HeadTooLarge

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a pipelined head behind a request still being answered: wait for that one
            return
        if self._head_started:
            self._refuse(408, "request head not received in time", "headers")
        else:
            self.transport.close()  # nothing was asked: nobody to answer

    def _refuse(self, status: int, message: str, field: str) -> None:
        body = error_body(status, message, field)
        reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        if not self.transport.is_closing():
            self.transport.write(head % (status, reason, len(body)) + body)
            self.transport.close()
