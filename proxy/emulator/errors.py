"""The emulator's error answers: Target's JSON error document (``status``, ``message``, and the ``field``
at fault), raised as ``EdgeError`` anywhere below a route."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger("proxy.emulator")


@dataclass(eq=False)
class EdgeError(Exception):
    """What the edge answers instead: ``extra`` holds an API's own fields of the document."""

    status: int
    message: str
    field: str | None = None
    headers: dict[str, str] | None = None
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)


def refused(field: str, message: str) -> EdgeError:
    """A 400 for one field, worded as the edge words it: ``<field>: <what is wrong>``."""
    return EdgeError(400, f"{field}: {message}", field)


def document(status: int, message: str, field: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        body["field"] = field
    return orjson.dumps({**body, **(extra or {})})


def answer(status: int, message: str, field: str | None = None, headers: Any = None, extra: Any = None) -> Response:
    return Response(document(status, message, field, extra), status, headers, media_type="application/json")


async def _edge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EdgeError)
    return answer(exc.status, exc.message, exc.field, exc.headers, exc.extra)


async def _routing_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    field = {404: "path", 405: "method"}.get(exc.status_code)
    return answer(exc.status_code, exc.detail, field, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("emulator error on %s %s", request.method, request.url.path)
    return answer(500, "internal error")


HANDLERS: dict[Any, Any] = {EdgeError: _edge_error, HTTPException: _routing_error, Exception: _unexpected}
