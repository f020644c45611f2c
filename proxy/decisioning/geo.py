"""Geo for on-device decisions, when the artifact targets by geo and the request names no place: the
edge's geo lookup (``GET https://assets.adobetarget.com/v1/geo`` with the visitor's address in
X-Forwarded-For, answered in ``x-geo-*`` headers), reached through the upstream client as every Adobe
host is, and kept per address for an hour (bounded), so that a visitor's later requests cost nothing."""

from __future__ import annotations

import logging
from typing import Any

from cachetools import TTLCache

from proxy.decisioning.context import geo_from_headers
from proxy.upstream import Upstream, UpstreamUnavailable

logger = logging.getLogger("proxy.decisioning")
GEO_HOST = "assets.adobetarget.com"
GEO_PATH = "/v1/geo"
PLACE = ("countryCode", "stateCode", "city", "latitude", "longitude")


class GeoLookup:
    def __init__(self, upstream: Upstream, max_addresses: int = 100_000, ttl_s: float = 3600.0) -> None:
        self.upstream = upstream
        self._known: TTLCache[str, dict[str, Any]] = TTLCache(max_addresses, ttl_s)
        self.lookups = 0

    def needed(self, request: dict[str, Any]) -> bool:
        """Whether the request names no place of its own (only, at most, an address)."""
        geo = (request.get("context") or {}).get("geo") or {}
        return not any(geo.get(key) is not None for key in PLACE)

    async def resolve(self, request: dict[str, Any], client_address: str | None) -> dict[str, Any]:
        """The request with the geo of its address (``context.geo.ipAddress``, else the client's)."""
        context = dict(request.get("context") or {})
        geo = dict(context.get("geo") or {})
        address = geo.get("ipAddress") or client_address
        if not address:
            return request
        found = self._known.get(address)
        if found is None:
            try:
                response = await self.upstream.request(
                    "GET", GEO_HOST, GEO_PATH, headers={"x-forwarded-for": str(address)}
                )
            except UpstreamUnavailable as exc:
                logger.warning("geo lookup of an address failed: %s", exc.message)
                return request
            self.lookups += 1
            found = geo_from_headers(response.headers) if response.status == 200 else {}
            self._known[address] = found
        context["geo"] = {**geo, **found}
        return {**request, "context": context}
