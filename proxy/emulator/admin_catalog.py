"""Target Admin API: offers (content and JSON), audiences, mboxes and their parameters, profile
attributes and environments.

Offers and audiences are the ``Catalog``'s own, so a changed offer or audience rule is what the next
delivery call decides with. Creating an offer or audience answers 200 with the stored item (the
documented samples); deleting answers the deleted item. An offer or audience still used by an activity
(or, for audiences, by another audience's ``audienceRule``) cannot be deleted (400), so the catalog never
points at nothing. Mboxes are the catalog's plus every mbox a delivery call asked for.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from proxy.emulator import checks
from proxy.emulator.admin_core import (
    AdminRequest,
    AdminResponse,
    Handler,
    admin_error,
    bad_request,
    iso,
    list_page,
    not_found,
    ok,
)
from proxy.emulator.catalog import Catalog
from proxy.emulator.profiles import ProfileStore
from proxy.emulator.rules import RuleError, check_audience_rule, check_rule
from proxy.emulator.stats import Stats

MAX_NAME = 250
ENVIRONMENTS = (
    {"id": 8820, "name": "Development"},
    {"id": 8818, "name": "Production"},
    {"id": 8819, "name": "Staging"},
)
# Properties (enterprise permissions): the fields Target's Admin API gives a property
PROPERTIES = (
    {
        "id": 4101,
        "name": "Kiosks",
        "description": "In-store kiosks",
        "channel": "web",
        "token": "a3f1c2e4-0b5d-4c6e-9f7a-8b1c2d3e4f50",
        "workspaces": [1],
    },
    {
        "id": 4102,
        "name": "Connected TV",
        "description": "Living-room apps",
        "channel": "mobile",
        "token": "b7e2d3f5-1c6e-4d7f-8a9b-9c2d3e4f5a61",
        "workspaces": [1],
    },
)
PROPERTY_FIELDS = {"id": "exact", "name": "text", "channel": "exact"}
OFFER_FIELDS = {"id": "exact", "name": "text", "type": "exact", "modifiedAt": "date", "workspace": "exact"}
AUDIENCE_FIELDS = {"id": "exact", "name": "text", "description": "text", "origin": "exact", "modifiedAt": "date"}
MBOX_FIELDS = {"name": "text", "status": "exact", "lastRequestedAt": "date"}
ENVIRONMENT_FIELDS = {"id": "exact", "name": "text"}
OFFER = r"(?P<kind>content|json)"


def _activity_audiences(activity: dict[str, Any]) -> Iterator[int]:
    for mbox in activity.get("locations", {}).get("mboxes", []):
        yield from mbox.get("audienceIds") or ()
    for experience in activity.get("experiences", []):
        yield from experience.get("audienceIds") or ()


def _profile_names(rule: Any) -> Iterator[str]:
    """Profile attribute names a targetRule reads."""
    if isinstance(rule, dict):
        if isinstance(rule.get("profile"), str):
            yield rule["profile"]
        for value in rule.values():
            yield from _profile_names(value)
    elif isinstance(rule, list):
        for part in rule:
            yield from _profile_names(part)


class Offers:
    def __init__(self, catalog: Catalog, clock: Callable[[], float]) -> None:
        self.catalog = catalog
        self.clock = clock

    def routes(self) -> list[tuple[str, str, Handler]]:
        one = rf"/offers/{OFFER}/(?P<offer_id>\d+)"
        return [
            ("GET", "/offers", self.list),
            ("POST", f"/offers/{OFFER}", self.create),
            ("GET", one, self.get),
            ("PUT", one, self.update),
            ("DELETE", one, self.delete),
        ]

    def _find(self, kind: str, offer_id: str) -> dict[str, Any]:
        offer = self.catalog.offers.get(int(offer_id))
        if offer is None or offer.get("type", "content") != kind:
            raise not_found(f"{kind} offer {offer_id} not found")
        return offer

    @staticmethod
    def _view(offer: dict[str, Any]) -> dict[str, Any]:
        return {key: offer[key] for key in ("id", "name", "content", "workspace", "modifiedAt") if key in offer}

    def _validated(self, body: Any, kind: str, offer_id: int) -> dict[str, Any]:
        body = checks.require_object(body)
        name = checks.text(body.get("name"), "name", MAX_NAME, required=True)
        content = body.get("content")
        if kind == "json" and not isinstance(content, dict):
            raise bad_request("content", "a JSON offer's content must be a JSON object")
        if kind == "content" and not isinstance(content, str):
            raise bad_request("content", "a content offer's content must be a string")
        offer = {"id": offer_id, "name": name, "type": kind, "content": copy.deepcopy(content)}
        workspace = checks.text(body.get("workspace"), "workspace", MAX_NAME)
        if workspace is not None:
            offer["workspace"] = workspace
        offer["modifiedAt"] = iso(self.clock())
        return offer

    def _store(self, offer: dict[str, Any]) -> dict[str, Any]:
        self.catalog.offers[int(offer["id"])] = offer
        self.catalog.reindex()
        return self._view(offer)

    def list(self, request: AdminRequest) -> AdminResponse:
        summaries = [
            {key: offer[key] for key in OFFER_FIELDS if key in offer} for offer in self.catalog.offers.values()
        ]
        return ok(list_page(request, summaries, "offers", OFFER_FIELDS))

    def get(self, request: AdminRequest, kind: str, offer_id: str) -> AdminResponse:
        return ok(self._view(self._find(kind, offer_id)))

    def create(self, request: AdminRequest, kind: str) -> AdminResponse:
        return ok(self._store(self._validated(request.body, kind, max(self.catalog.offers, default=0) + 1)))

    def update(self, request: AdminRequest, kind: str, offer_id: str) -> AdminResponse:
        current = self._find(kind, offer_id)
        return ok(self._store(self._validated(request.body, kind, int(current["id"]))))

    def delete(self, request: AdminRequest, kind: str, offer_id: str) -> AdminResponse:
        offer = self._find(kind, offer_id)
        for activity in self.catalog.activities.values():
            for experience in activity.get("experiences", []):
                if any(int(o.get("offerId", 0)) == offer["id"] for o in experience.get("offerLocations", [])):
                    raise bad_request("id", f"offer {offer['id']} is used by activity {activity['id']}")
        del self.catalog.offers[int(offer["id"])]
        self.catalog.reindex()
        return ok(self._view(offer))


class Audiences:
    def __init__(self, catalog: Catalog, clock: Callable[[], float]) -> None:
        self.catalog = catalog
        self.clock = clock

    def routes(self) -> list[tuple[str, str, Handler]]:
        one = r"/audiences/(?P<audience_id>\d+)"
        return [
            ("GET", "/audiences", self.list),
            ("POST", "/audiences", self.create),
            ("GET", one, self.get),
            ("PUT", one, self.update),
            ("DELETE", one, self.delete),
        ]

    def _find(self, audience_id: str) -> dict[str, Any]:
        audience = self.catalog.audiences.get(int(audience_id))
        if audience is None:
            raise not_found(f"audience {audience_id} not found")
        return audience

    @staticmethod
    def _view(audience: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "name", "description", "origin", "targetRule", "audienceRule", "workspace", "modifiedAt")
        return {"description": "", **{key: audience[key] for key in keys if key in audience}}

    def _references(self, audience_id: int) -> set[int]:
        """Audiences whose audienceRule names ``audience_id``, directly or through others."""
        found: set[int] = set()
        pending = [audience_id]
        while pending:
            target = pending.pop()
            for other in self.catalog.audiences.values():
                rule = other.get("audienceRule")
                if rule is None or other["id"] in found:
                    continue
                named = check_audience_rule(rule, lambda n: True)
                if target in named:
                    found.add(int(other["id"]))
                    pending.append(int(other["id"]))
        return found

    def _validated(self, body: Any, audience_id: int) -> dict[str, Any]:
        body = checks.require_object(body)
        name = checks.text(body.get("name"), "name", MAX_NAME, required=True)
        assert name is not None
        for other in self.catalog.audiences.values():
            if other["id"] != audience_id and str(other.get("name", "")).lower() == name.lower():
                raise bad_request("name", f"audience {other['id']} already has the name {name!r}")
        description = checks.text(body.get("description"), "description", 2000, blank_ok=True)
        target_rule, audience_rule = body.get("targetRule"), body.get("audienceRule")
        if target_rule is not None and audience_rule is not None:
            raise bad_request("targetRule", "targetRule and audienceRule cannot be combined in one audience")
        if target_rule is None and audience_rule is None:
            raise bad_request("targetRule", "an audience needs a targetRule or an audienceRule")
        audience: dict[str, Any] = {
            "id": audience_id,
            "name": name,
            "description": description or "",
            "origin": "target",
        }
        try:
            if target_rule is not None:
                check_rule(target_rule)
                audience["targetRule"] = copy.deepcopy(target_rule)
            else:
                named = check_audience_rule(audience_rule, lambda n: n in self.catalog.audiences)
                if audience_id in named or named & self._references(audience_id):
                    raise RuleError("audienceRule: an audience cannot include itself")
                audience["audienceRule"] = copy.deepcopy(audience_rule)
        except RuleError as exc:  # its message names the part of the rule, e.g. "targetRule.and[1]: ..."
            raise admin_error(400, str(exc), "targetRule" if target_rule is not None else "audienceRule") from None
        workspace = checks.text(body.get("workspace"), "workspace", MAX_NAME)
        if workspace is not None:
            audience["workspace"] = workspace
        audience["modifiedAt"] = iso(self.clock())
        return audience

    def _store(self, audience: dict[str, Any]) -> dict[str, Any]:
        self.catalog.audiences[int(audience["id"])] = audience
        self.catalog.reindex()
        return self._view(audience)

    def list(self, request: AdminRequest) -> AdminResponse:
        summaries = [
            {key: audience.get(key, "") for key in ("id", "name", "description", "origin", "modifiedAt")}
            for audience in self.catalog.audiences.values()
        ]
        page = list_page(request, summaries, "audiences", AUDIENCE_FIELDS)
        return ok({"offset": page["offset"], **page})

    def get(self, request: AdminRequest, audience_id: str) -> AdminResponse:
        return ok(self._view(self._find(audience_id)))

    def create(self, request: AdminRequest) -> AdminResponse:
        return ok(self._store(self._validated(request.body, max(self.catalog.audiences, default=0) + 1)))

    def update(self, request: AdminRequest, audience_id: str) -> AdminResponse:
        current = self._find(audience_id)
        return ok(self._store(self._validated(request.body, int(current["id"]))))

    def delete(self, request: AdminRequest, audience_id: str) -> AdminResponse:
        audience = self._find(audience_id)
        key = int(audience["id"])
        for activity in self.catalog.activities.values():
            if key in set(_activity_audiences(activity)):
                raise bad_request("id", f"audience {key} is used by activity {activity['id']}")
        users = self._references(key)
        if users:
            raise bad_request("id", f"audience {key} is used by audience {min(users)}")
        del self.catalog.audiences[key]
        self.catalog.reindex()
        return ok(self._view(audience))


class Locations:
    """Mboxes, their parameters, profile attributes and environments: what a client may target."""

    def __init__(self, catalog: Catalog, stats: Stats, profiles: ProfileStore) -> None:
        self.catalog = catalog
        self.stats = stats
        self.profiles = profiles

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/mboxes", self.mboxes),
            ("GET", r"/mbox/(?P<name>[^/]+)", self.mbox_parameters),
            ("GET", "/profileattributes/mbox", self.profile_attributes),
            ("GET", "/environments", self.environments),
            ("GET", r"/environments/(?P<environment_id>\d+)", self.environment),
            ("GET", "/properties", self.properties),
            ("GET", r"/properties/(?P<property_id>\d+)", self.property),
        ]

    def mboxes(self, request: AdminRequest) -> AdminResponse:
        items = []
        for name in sorted(set(self.catalog.known_mboxes()) | set(self.stats.mboxes)):
            item: dict[str, Any] = {"name": name, "status": "active"}
            seen = self.stats.mboxes.get(name)
            if seen is not None and seen[0]:
                item["lastRequestedAt"] = iso(seen[0])
            items.append(item)
        return ok(list_page(request, items, "mboxes", MBOX_FIELDS, default_sort="name"))

    def mbox_parameters(self, request: AdminRequest, name: str) -> AdminResponse:
        seen = self.stats.mboxes.get(name)
        if seen is None and name not in self.catalog.known_mboxes():
            raise not_found(f"mbox {name} not found")
        parameters = [{"name": p, "parameterType": "MBOX"} for p in sorted(seen[1] if seen else ())]
        page = list_page(request, parameters, "mboxParameters", {}, default_sort=None)
        return ok({"name": name, "mboxParameters": page["mboxParameters"]})

    def profile_attributes(self, request: AdminRequest) -> AdminResponse:
        names = set(self.profiles.attribute_names)
        for audience in self.catalog.audiences.values():
            names.update(_profile_names(audience.get("targetRule")))
        return ok({"mboxProfileAttributes": sorted(names)})

    def environments(self, request: AdminRequest) -> AdminResponse:
        return ok(list_page(request, [dict(e) for e in ENVIRONMENTS], "environments", ENVIRONMENT_FIELDS, None))

    def properties(self, request: AdminRequest) -> AdminResponse:
        return ok(list_page(request, [dict(p) for p in PROPERTIES], "properties", PROPERTY_FIELDS, None))

    def property(self, request: AdminRequest, property_id: str) -> AdminResponse:
        for found in PROPERTIES:
            if found["id"] == int(property_id):
                return ok(dict(found))
        raise not_found(f"property {property_id} not found")

    def environment(self, request: AdminRequest, environment_id: str) -> AdminResponse:
        for environment in ENVIRONMENTS:
            if environment["id"] == int(environment_id):
                return ok(dict(environment))
        raise not_found(f"environment {environment_id} not found")
