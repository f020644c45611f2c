"""Reading request bodies within limits and writing JSON answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import ApiError

# Headers a client's request carries upstream; everything else (cookies, credentials, hop-by-hop) stays.
FORWARDED_HEADERS = (
    "user-agent",
    "accept-language",
    "x-request-id",
    "x-exc-sdk",
    "x-exc-sdk-version",
)


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


async def read_bytes(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body exceeds {limit} bytes", "body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "body: a JSON body is required", "body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "body: malformed JSON", "body") from None


async def read_json(request: Request, limit: int) -> Any:
    return parse_json(await read_bytes(request, limit))


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (parsed here: Starlette's parser needs multipart)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in ("", "application/x-www-form-urlencoded"):
        raise ApiError(415, "body: must be application/x-www-form-urlencoded", "body")
    try:
        text = (await read_bytes(request, limit)).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "body: must be UTF-8 text", "body") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def forwarded_headers(
    headers: Mapping[str, str], client_host: str | None, content_type: str | None = "application/json"
) -> dict[str, str]:
    """The client's headers that travel upstream, and the client's address in X-Forwarded-For."""
    forwarded = {name: value for name in FORWARDED_HEADERS if (value := headers.get(name)) is not None}
    if content_type:
        forwarded["content-type"] = content_type
    if client_host is not None:
        prior = headers.get("x-forwarded-for")
        forwarded["x-forwarded-for"] = f"{prior}, {client_host}" if prior else client_host
    return forwarded


def request_headers(request: Request, content_type: str | None = "application/json") -> dict[str, str]:
    return forwarded_headers(request.headers, request.client.host if request.client else None, content_type)
