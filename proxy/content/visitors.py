"""Who a request is for: the visitor's ids, with the tntId's location suffix split off.

Adobe's SDKs read a location hint from a tntId of the form ``<id>.<cluster>_<node>`` and then go
straight to that edge cluster, around the gateway. Clients therefore only ever see the bare id; the
suffix lives in the gateway's affinity record and is restored on the way upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def split_location(tnt_id: str) -> tuple[str, str | None]:
    """``"123-456.28_0"`` -> ``("123-456", "28_0")``; a bare id gives ``(id, None)``."""
    base, dot, suffix = tnt_id.partition(".")
    return (base, suffix) if dot and suffix else (base, None)


@dataclass(slots=True)
class VisitorIds:
    """The ids a request names its visitor by (not changed once parsed; not frozen, as a frozen dataclass
    costs three times as much to make, once a request)."""

    tnt_id: str | None = None
    location: str | None = None
    third_party_id: str | None = None
    marketing_cloud_visitor_id: str | None = None

    @classmethod
    def parse(cls, ids: dict[str, Any] | None) -> VisitorIds:
        """From a single mbox body or a batch / Delivery ``id`` object (already validated)."""
        if not ids:
            return EMPTY
        tnt, location = None, None
        raw = ids.get("tntId")
        if raw:
            tnt, location = split_location(str(raw))
        third = ids.get("thirdPartyId")
        mcvid = ids.get("marketingCloudVisitorId")
        if not (tnt or third or mcvid):
            return EMPTY
        return cls(tnt, location, str(third) if third else None, str(mcvid) if mcvid else None)

    def keys(self, client: str) -> list[str]:
        """Store keys for every id the visitor is known by, most specific first."""
        keys = []
        if self.tnt_id:
            keys.append(f"{client}|t|{self.tnt_id}")
        if self.third_party_id:
            keys.append(f"{client}|p|{self.third_party_id}")
        if self.marketing_cloud_visitor_id:
            keys.append(f"{client}|m|{self.marketing_cloud_visitor_id}")
        return keys

    def __bool__(self) -> bool:
        return bool(self.tnt_id or self.third_party_id or self.marketing_cloud_visitor_id)


EMPTY = VisitorIds()
