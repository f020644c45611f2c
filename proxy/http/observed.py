"""What the edge observes of each request, handed to the metrics and the access log (``proxy.ops``)."""

from __future__ import annotations

from typing import NamedTuple


class Observed(NamedTuple):
    """One request as observed at the edge: what the metrics count and the access log writes."""

    method: str
    route: str
    status: int
    seconds: float
    cache: str | None  # hit, miss, coalesced, stale, default, bypass, accepted
    visitor: str | None
    request_id: str | None
