"""Reading request bodies within limits and writing JSON answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from proxy.http.errors import ApiError
from proxy.upstream import forwarded_headers

# Headers a client's request carries upstream; everything else (cookies, credentials, hop-by-hop) stays.


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


# How deep a request body may nest. Target's requests are a few levels deep; anything the gateway keeps or
# forwards is written again, and a document nested deeper than the writer's limit (254) cannot be.
MAX_JSON_DEPTH = 100


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "body: a JSON body is required", "body")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):
            raise ApiError(400, f"body: nested more than {MAX_JSON_DEPTH} levels deep", "body") from None
        raise ApiError(400, "body: malformed JSON", "body") from None
    # Only a body with that many objects and arrays can nest that deep: most never pay for the walk (and
    # a body shorter than that not even for the count).
    if len(raw) > MAX_JSON_DEPTH and raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:
        too_deep = nested_beyond(document, MAX_JSON_DEPTH)
        if too_deep is not None:
            raise ApiError(400, f"{too_deep}: nested more than {MAX_JSON_DEPTH} levels deep", too_deep)
    return document


def nested_beyond(document: Any, limit: int) -> str | None:
    """The path of the first object or array nested more than ``limit`` levels deep, or None."""
    # Depth-first without recursion (the document may be deeper than Python's own limit); each entry
    # keeps its parent's entry, so a path is only written out for the one value that is too deep.
    stack: list[tuple[Any, int, Any]] = [(document, 1, None)]
    while stack:
        value, depth, trail = stack.pop()
        if isinstance(value, dict):
            children: Any = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if depth > limit:
            return _path(trail)
        for key, child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (trail, key)))
    return None


def _path(trail: Any, shown: int = 4) -> str:
    """The first ``shown`` keys of a path (enough to find the field; a path 100 keys long is no help)."""
    keys: list[Any] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    keys.reverse()
    path = ""
    for key in keys[:shown]:
        text = str(key) if len(str(key)) <= 64 else str(key)[:64] + "…"
        path += f"[{text}]" if isinstance(key, int) else (f".{text}" if path else text)
    return (path + "…" if len(keys) > shown else path) or "body"


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


def request_headers(request: Request, content_type: str | None = "application/json") -> dict[str, str]:
    return forwarded_headers(request.headers, request.client.host if request.client else None, content_type)
