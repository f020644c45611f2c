"""JSON errors: every failure answers ``{"status": N, "message": "...", "field": "..."}``.

The one place where failures raised below the edge become HTTP answers (``answer_for``): the upstream
client's (no answer, an open circuit, a refusal passed on), the call budgets' and the session limit's. The
edge's own refusals (bad input, keys) are ``ApiError`` from the start.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from proxy.failures import ArtifactMissing, BudgetExhausted, SessionBusy
from proxy.upstream import CircuitOpen, UpstreamRefused, UpstreamResponse, UpstreamTimeout, UpstreamUnavailable

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


# Everything the edge answers as JSON with its own status.
ANSWERED = (ApiError, UpstreamUnavailable, UpstreamRefused, BudgetExhausted, SessionBusy, ArtifactMissing)
Answered = ApiError | UpstreamUnavailable | UpstreamRefused | BudgetExhausted | SessionBusy | ArtifactMissing


def answer_for(exc: Answered) -> ApiError:
    """The gateway's answer to a failure: upstream gave none (502; 504 for a timeout; 503 while its circuit
    is open), refused (its answer passed on), a call budget is spent (429) or the session busy (420)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UpstreamRefused):
        return upstream_error(exc.response)
    if isinstance(exc, CircuitOpen):
        return ApiError(503, exc.message, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, UpstreamTimeout):
        return ApiError(504, exc.message)
    if isinstance(exc, UpstreamUnavailable):
        return ApiError(502, exc.message)
    if isinstance(exc, BudgetExhausted):
        return ApiError(429, exc.message, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, ArtifactMissing):
        return ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    return ApiError(420, str(exc))


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
    assert isinstance(exc, ANSWERED)
    error = answer_for(exc)
    return error_response(error.status, error.message, error.field, error.headers, error.extra)


# What the router refuses, it refuses for the path or the method.
ROUTING_FIELDS = {404: "path", 405: "method"}


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, ROUTING_FIELDS.get(exc.status_code), exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    # Never a traceback on the wire; the log keeps it for the operator.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    **{kind: api_error_handler for kind in ANSWERED},
    HTTPException: http_error_handler,
    Exception: unhandled_error_handler,
}
