"""Where a request came from, as the content service sees it (no wire API): its headers and peer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Origin(Protocol):
    """Where a request came from: what of it goes upstream with the calls made on its behalf."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def client_host(self) -> str | None: ...


def visitor_address(origin: Origin) -> str | None:
    """The visitor's address: the first of X-Forwarded-For (a device behind a proxy), else the peer's."""
    forwarded = origin.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip() or origin.client_host
    return origin.client_host
