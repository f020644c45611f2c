"""JSON errors: every failure answers ``{"status": N, "message": "...", "field": "..."}``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from proxy.upstream import UpstreamResponse

logger = logging.getLogger("proxy.errors")
PASSED_THROUGH_5XX = frozenset({502, 503, 504})
UPSTREAM_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route and rendered as JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
        self.extra = extra  # more fields of the JSON answer (an API's own error fields)


def upstream_error(response: UpstreamResponse) -> ApiError:
    """An upstream failure passed through with its status, as the gateway's JSON error; an upstream's own
    failure (500 and the like) is the gateway's 502, so that a 500 always means the gateway failed."""
    message, field = f"upstream answered {response.status}", None
    try:
        payload = orjson.loads(response.body)
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            message = payload["message"]
            # Upstream's refusals name the field at the start of the message ("context.channel: ...").
            named = UPSTREAM_FIELD.match(message)
            field = payload.get("field") if isinstance(payload.get("field"), str) else named and named[1]
    except orjson.JSONDecodeError:
        pass
    status = response.status
    if status >= 500 and status not in PASSED_THROUGH_5XX:
        status, message, field = 502, f"upstream answered {response.status}: {message}", None
    retry_after = response.headers.get("retry-after")
    return ApiError(status, message, field, headers={"Retry-After": retry_after} if retry_after else None)


def problem(exc: ApiError) -> ApiError:
    """The error with the fields Experience Platform's errors carry (RFC 7807: ``type``, ``title``,
    ``detail``) beside the gateway's own, for clients of those APIs."""
    fields = {"type": "about:blank", "title": HTTPStatus(exc.status).phrase, "detail": exc.message}
    return ApiError(exc.status, exc.message, exc.field, exc.headers, {**fields, **(exc.extra or {})})


def error_body(status: int, message: str, field: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, object] = {"status": status, "message": message}
    if field is not None:
        body["field"] = field
    if extra:
        body.update(extra)
    return orjson.dumps(body)


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    return Response(error_body(status, message, field, extra), status, headers, media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.field, exc.headers, exc.extra)


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
