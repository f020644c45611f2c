"""The emulator's catalog: activities, offers and audiences in the shapes of the Target Admin API.

A catalog file is JSON: ``{"client": "demo", "activities": [...], "offers": [...], "audiences": [...],
"geo": {"<ip>": {"country": ..., "region": ..., "city": ...}}}``. Activities carry ``type`` ("ab" or
"xt"), ``state``, ``priority``, ``locations.mboxes[]``, ``experiences[]`` with ``visitorPercentage`` (AB)
or ``audienceIds`` (XT) and ``offerLocations[]``, and ``metrics[]``. Offers carry ``content`` and an
optional ``type`` ("content" for HTML, "json").
"""

from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

ACTIVE_STATES = frozenset({"approved"})
GLOBAL_MBOX = "target-global-mbox"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class CatalogError(ValueError):
    pass


class Catalog:
    """Mutable store of the catalog, indexed by mbox name for decisioning."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.client: str = data.get("client", "demo")
        self.activities: dict[int, dict[str, Any]] = {}
        self.offers: dict[int, dict[str, Any]] = {}
        self.audiences: dict[int, dict[str, Any]] = {}
        self.geo: dict[str, dict[str, str]] = dict(data.get("geo", {}))
        self.version = 0
        loaded = now_iso()
        # The Admin API shows these on every item; a catalog file need not carry them.
        for offer in data.get("offers", []):
            self.offers[int(offer["id"])] = {"type": "content", "modifiedAt": loaded, **offer}
        for audience in data.get("audiences", []):
            self.audiences[int(audience["id"])] = {"origin": "target", "modifiedAt": loaded, **audience}
        for activity in data.get("activities", []):
            self._check_activity(activity)
            third_party_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"activity:{activity['id']}"))
            defaults = {"thirdPartyId": third_party_id, "modifiedAt": loaded}
            self.activities[int(activity["id"])] = {**defaults, **copy.deepcopy(activity)}
        self._by_mbox: dict[str, list[dict[str, Any]]] = {}
        self.reindex()

    @classmethod
    def load(cls, path: Path | None) -> Catalog:
        if path is None:
            raw = resources.files("proxy.emulator").joinpath("demo_catalog.json").read_bytes()
        else:
            try:
                raw = Path(path).read_bytes()
            except OSError as exc:
                raise CatalogError(f"cannot read catalog {path}: {exc.strerror}") from exc
        try:
            return cls(orjson.loads(raw))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"catalog {path or 'demo'} is not valid: {exc}") from exc

    def _check_activity(self, activity: dict[str, Any]) -> None:
        if activity.get("type", "ab") not in ("ab", "xt"):
            raise CatalogError(f"activity {activity.get('id')}: type must be ab or xt")
        for experience in activity.get("experiences", []):
            for location in experience.get("offerLocations", []):
                offer_id = int(location.get("offerId", 0))
                if offer_id and offer_id not in self.offers:
                    raise CatalogError(f"activity {activity['id']}: unknown offer {offer_id}")

    def reindex(self) -> None:
        """Rebuild the mbox index, highest priority first; called after every change."""
        by_mbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for activity in self.activities.values():
            for location in activity.get("locations", {}).get("mboxes", []):
                by_mbox[location["name"]].append(activity)
        for name, activities in by_mbox.items():
            unique = {id(a): a for a in activities}.values()
            by_mbox[name] = sorted(unique, key=lambda a: (-int(a.get("priority", 5)), int(a["id"])))
        self._by_mbox = dict(by_mbox)
        self.version += 1

    def approved_for(self, mbox: str) -> list[dict[str, Any]]:
        """Approved activities with a location on this mbox, by priority, whatever their dates."""
        return [a for a in self._by_mbox.get(mbox, ()) if a.get("state", "approved") in ACTIVE_STATES]

    def activities_for(self, mbox: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """Live activities with a location on this mbox, by priority."""
        at = at or datetime.now(UTC)
        live = []
        for activity in self.approved_for(mbox):
            starts, ends = parse_time(activity.get("startsAt")), parse_time(activity.get("endsAt"))
            if (starts and at < starts) or (ends and at > ends):
                continue
            live.append(activity)
        return live

    def known_mboxes(self) -> list[str]:
        return sorted(self._by_mbox)
