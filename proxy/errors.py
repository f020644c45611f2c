"""JSON errors: every failure answers ``{"status": N, "message": "...", "field": "..."}``."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger("proxy.errors")


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route and rendered as JSON."""

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_body(status: int, message: str, field: str | None = None) -> bytes:
    body: dict[str, object] = {"status": status, "message": message}
    if field is not None:
        body["field"] = field
    return orjson.dumps(body)


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(error_body(status, message, field), status, headers, media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.field, exc.headers)


# What the router refuses, it refuses for the path or the method.
ROUTING_FIELDS = {404: "path", 405: "method"}


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, ROUTING_FIELDS.get(exc.status_code), exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    # Never a traceback on the wire; the log keeps it for the operator.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    Exception: unhandled_error_handler,
}
