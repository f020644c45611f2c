"""Errors answered in the body shape of the API they belong to.

The edge APIs answer ``{"status", "message", "field"}`` (proxy.http.errors); IMS, the Target Admin API and
Experience Platform each have their own error bodies, which clients parse, so the emulator keeps them.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


class ShapedError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def shaped_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShapedError)
    return json_answer(exc.body, exc.status, exc.headers)
