"""The Target Admin API's common ground: its error body, requests as data, routing, list queries and
media-type versions.

Handlers take an ``AdminRequest`` and return an ``AdminResponse`` rather than speaking HTTP, so the batch
endpoint runs its operations through exactly the code a direct call runs.

Errors answer ``{"httpStatus", "requestId", "requestTime", "errors": [{"errorCode", "message", "meta"?}]}``.
Only ``Unsupported.Feature`` (406) is a documented code; the others are the emulator's: ``BadRequest`` (400),
``Unauthorized`` (401), ``Forbidden`` (403), ``NotFound`` (404), ``MethodNotAllowed`` (405),
``UnsupportedMediaType`` (415) and ``Throttled`` (503). ``meta.field`` names the offending field when one is.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from proxy.emulator.catalog import parse_time
from proxy.emulator.shaped import ShapedError

DEFAULT_LIMIT = 2147483647
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "Unsupported.Feature",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    503: "Throttled",
}
# Highest media-type version each resource family accepts (application/vnd.adobe.target.vN+json)
MAX_VERSION = {"activities": 3, "offers": 2, "audiences": 3}
MEDIA_VERSION = re.compile(r"application/vnd\.adobe\.target\.v(\d+)\+json", re.IGNORECASE)


def iso(timestamp: float) -> str:
    """Target's timestamp form: ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def admin_error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> ShapedError:
    error: dict[str, Any] = {"errorCode": ERROR_CODES.get(status, "Error"), "message": message}
    if field is not None:
        error["meta"] = {"field": field}
    body = {
        "httpStatus": status,
        "requestId": str(uuid.uuid4()),
        "requestTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "errors": [error],
    }
    return ShapedError(status, body, headers)


def bad_request(field: str, message: str) -> ShapedError:
    return admin_error(400, f"{field}: {message}", field)


def not_found(message: str) -> ShapedError:
    return admin_error(404, message)


def _always_allowed() -> int | None:
    return None


@dataclass(slots=True)
class AdminRequest:
    method: str
    path: str  # below /{tenant}/target, e.g. "/offers/content/400001"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None
    # Counts one more call against the client's rate; None when allowed, else seconds to wait
    charge: Callable[[], int | None] = _always_allowed

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return found[-1] if found else None


@dataclass(slots=True)
class AdminResponse:
    status: int
    body: Any
    headers: dict[str, str] | None = None


Handler = Callable[..., AdminResponse]


def ok(body: Any, status: int = 200) -> AdminResponse:
    return AdminResponse(status, body)


class Router:
    """Method and path pattern to handler; named groups become keyword arguments."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        for method, pattern, handler in routes:
            self._routes.append((method, re.compile(pattern), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, Any]]:
        path = path.rstrip("/") or "/"
        allowed = []
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return handler, match.groupdict()
            allowed.append(route_method)
        if allowed:
            raise admin_error(405, f"{method} is not allowed on {path}; allowed: {', '.join(sorted(set(allowed)))}")
        raise not_found(f"no such resource: {path}")


def negotiate(request: AdminRequest) -> None:
    """The version comes from Content-Type on calls with a body and from Accept on the others."""
    has_body = request.method in BODY_METHODS
    header = request.headers.get("content-type" if has_body else "accept", "")
    if has_body and header and "json" not in header.lower():
        raise admin_error(415, f"unsupported media type {header}; send application/vnd.adobe.target.v1+json")
    match = MEDIA_VERSION.search(header)
    if match:
        family = request.path.strip("/").split("/", 1)[0]
        if not 1 <= int(match.group(1)) <= MAX_VERSION.get(family, 1):
            raise admin_error(406, "Unsupported features detected")


# --- lists: limit, offset, sortBy, field filters --------------------------------------------------------


def _whole_number(request: AdminRequest, name: str, default: int) -> int:
    raw = request.value(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise bad_request(name, "must be a whole number >= 0")
    return int(raw)


def _date(value: str, name: str) -> datetime:
    try:
        parsed = parse_time(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise bad_request(name, f"{value!r} is not an ISO 8601 date-time")
    return parsed


def _matches(actual: Any, wanted: str, kind: str, name: str) -> bool:
    if actual is None:
        return False
    if kind == "text":
        return wanted.lower() in str(actual).lower()
    if kind == "date":
        moment = _date(str(actual), name)
        if "/" in wanted:
            start, _, end = wanted.partition("/")
            return _date(start, name) <= moment <= _date(end, name)
        return moment == _date(wanted, name)
    return str(actual).lower() == wanted.lower()


def _passes(item: Mapping[str, Any], name: str, wanted: list[str], kind: str) -> bool:
    """Repeated values are alternatives; a ``!`` value excludes."""
    positive = [w for w in wanted if not w.startswith("!")]
    negative = [w[1:] for w in wanted if w.startswith("!")]
    actual = item.get(name)
    if positive and not any(_matches(actual, w, kind, name) for w in positive):
        return False
    return not any(_matches(actual, w, kind, name) for w in negative)


def _sort_key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sorted(items: list[dict[str, Any]], keys: list[str], fields: Mapping[str, str]) -> list[dict[str, Any]]:
    # Stable sorts from the last key to the first; items without the field go last either way.
    for key in reversed(keys):
        descending, name = key.startswith("-"), key.lstrip("-")
        if name not in fields:
            raise bad_request("sortBy", f"cannot sort by {name!r}; sortable: {', '.join(fields)}")
        present = [item for item in items if item.get(name) is not None]
        absent = [item for item in items if item.get(name) is None]
        try:
            present.sort(key=lambda item: _sort_key(item[name]), reverse=descending)
        except TypeError:
            present.sort(key=lambda item: str(item[name]).lower(), reverse=descending)
        items = present + absent
    return items


def list_page(
    request: AdminRequest,
    items: list[dict[str, Any]],
    key: str,
    fields: Mapping[str, str],
    default_sort: str | None = "id",
) -> dict[str, Any]:
    """A list answer: ``fields`` maps each filterable and sortable field to how it matches (``exact``,
    ``text`` for case-insensitive contains, ``date`` for an instant or a ``start/end`` range)."""
    limit = _whole_number(request, "limit", DEFAULT_LIMIT)
    offset = _whole_number(request, "offset", 0)
    filters: dict[str, list[str]] = {}
    for name, value in request.query:
        if name in ("limit", "offset", "sortBy"):
            continue
        if name not in fields:
            raise bad_request(name, f"cannot filter by {name!r}; filterable: {', '.join(fields)}")
        filters.setdefault(name, []).append(value)
    chosen = [i for i in items if all(_passes(i, n, wanted, fields[n]) for n, wanted in filters.items())]
    sort_keys = [part.strip() for value in request.values("sortBy") for part in value.split(",") if part.strip()]
    if sort_keys or default_sort:
        chosen = _sorted(chosen, sort_keys or [default_sort or ""], fields)
    return {"total": len(chosen), "offset": offset, "limit": limit, key: chosen[offset : offset + limit]}
