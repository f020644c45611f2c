"""Target Admin API: AB and XT activities, their name / state / priority / schedule, changelog and reports.

Activities live in the emulator's ``Catalog`` in the Admin API's own shape (``locations.mboxes``,
``experiences[].offerLocations``, ``metrics``), so every change here changes what the delivery APIs
answer. Creation answers 201 (the OpenAPI's status); every other success answers 200. Each change of
name, state, priority or schedule, and of an experience's offer, adds a changelog entry.
Reports come from the emulator's own counts: impressions for entries, conversions per experience; the
visitor, visit, impression and landing levels all carry the same counts, and the orders report is empty.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from proxy.emulator import checks
from proxy.emulator.admin_catalog import ENVIRONMENTS
from proxy.emulator.admin_core import (
    AdminRequest,
    AdminResponse,
    Handler,
    bad_request,
    iso,
    list_page,
    not_found,
    ok,
)
from proxy.emulator.catalog import Catalog, parse_time
from proxy.emulator.stats import Stats

ACTIVITY_STATES = ("approved", "deactivated", "paused", "saved", "deleted")
STATE_UPDATES = ("approved", "deactivated", "saved", "deleted")
SUCCESS_EVENTS = ("mbox_shown", "mbox_clicked")
MAX_NAME = 250
PRODUCTION_ENVIRONMENT = 8818
LIST_FIELDS = {
    "id": "exact",
    "thirdPartyId": "exact",
    "type": "exact",
    "state": "exact",
    "name": "text",
    "priority": "exact",
    "modifiedAt": "date",
    "startsAt": "date",
    "endsAt": "date",
    "workspace": "exact",
}
# Activity field -> its key in a changelog entry's activityParameters
LOGGED = {"name": "activityName", "state": "state", "priority": "priority", "startsAt": "startsAt", "endsAt": "endsAt"}
ID = r"(?P<activity_id>\d+)"
KIND = r"(?P<kind>ab|xt)"


def numbered(items: list[Any], field: str, id_key: str, seen: set[int]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each object of ``items`` with where it stands, once its local id (``id_key``) is checked: a whole
    number used once in the list; ``seen`` collects them."""
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        checks.require_object(item, where)
        local_id = checks.non_negative_index(item.get(id_key), f"{where}.{id_key}")
        if local_id in seen:
            raise bad_request(f"{where}.{id_key}", f"{local_id} is used twice")
        seen.add(local_id)
        yield where, item


def _priority(value: Any) -> int:
    """0-999; the documented sample sends it as a string."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise bad_request("priority", "must be a whole number from 0 to 999")
    return value


def _instant(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_time(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise bad_request(field, f"{value!r} is not an ISO 8601 date-time")
    return parsed


def _schedule(starts: Any, ends: Any, *, both: bool) -> tuple[str | None, str | None]:
    """The dates as sent (Target answers them as given), once both parse and end after start."""
    if both and (starts is None or ends is None):
        raise bad_request("startsAt" if starts is None else "endsAt", "startsAt and endsAt are both required")
    start, end = _instant(starts, "startsAt"), _instant(ends, "endsAt")
    if start and end and end <= start:
        raise bad_request("endsAt", "must be after startsAt")
    return starts, ends


class Activities:
    def __init__(self, catalog: Catalog, stats: Stats, clock: Callable[[], float]) -> None:
        self.catalog = catalog
        self.stats = stats
        self.clock = clock
        self.changelogs: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def routes(self) -> list[tuple[str, str, Handler]]:
        typed = rf"/activities/(?:{KIND}/)?{ID}"
        return [
            ("GET", "/activities", self.list),
            ("POST", f"/activities/{KIND}", self.create),
            ("GET", f"/activities/{KIND}/{ID}", self.get),
            ("PUT", f"/activities/{KIND}/{ID}", self.update),
            ("DELETE", f"/activities/{KIND}/{ID}", self.delete),
            ("PUT", f"{typed}/name", self.rename),
            ("PUT", f"{typed}/state", self.set_state),
            ("PUT", f"{typed}/priority", self.set_priority),
            ("PUT", f"{typed}/schedule", self.set_schedule),
            ("GET", f"{typed}/changelog", self.changelog),
            # abt: the report of an A/B activity with auto-allocated traffic
            ("GET", rf"/activities/(?P<kind>ab|xt|abt)/{ID}/report/performance", self.performance),
            ("GET", f"/activities/{KIND}/{ID}/(?:report/orders|orders/performance)", self.orders),
        ]

    # --- helpers ---------------------------------------------------------------------------------------

    def _find(self, activity_id: str, kind: str | None = None) -> dict[str, Any]:
        activity = self.catalog.activities.get(int(activity_id))
        if activity is None or (kind is not None and activity.get("type", "ab") != kind):
            raise not_found(f"{kind or ''} activity {activity_id} not found".lstrip())
        return activity

    def _log(self, activity_id: int, entry: dict[str, Any]) -> None:
        self.changelogs[activity_id].append({"modifiedAt": iso(self.clock()), **entry})

    def _log_changes(self, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        changes = {}
        for field, key in LOGGED.items():
            old, new = (before or {}).get(field), after.get(field)
            if old != new and new is not None:
                changes[key] = {"changedValue": new} if old is None else {"previousValue": old, "changedValue": new}
        if changes:
            self._log(int(after["id"]), {"activityParameters": changes})
        if before is not None:
            self._log_offer_changes(before, after)

    def _log_offer_changes(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        def placements(activity: dict[str, Any]) -> dict[tuple[int, int], int]:
            return {
                (int(e["experienceLocalId"]), int(o["locationLocalId"])): int(o["offerId"])
                for e in activity.get("experiences", [])
                for o in e.get("offerLocations", [])
            }

        def offer(offer_id: int) -> dict[str, Any]:
            return {"id": offer_id, "name": self.catalog.offers.get(offer_id, {}).get("name", "")}

        old = placements(before)
        mboxes = {int(m["locationLocalId"]): m["name"] for m in after.get("locations", {}).get("mboxes", [])}
        names = {int(e["experienceLocalId"]): e.get("name", "") for e in after.get("experiences", [])}
        for (experience, location), offer_id in placements(after).items():
            previous = old.get((experience, location))
            if previous == offer_id:
                continue
            change: dict[str, Any] = {"changedValue": offer(offer_id)}
            if previous is not None:
                change["previousValue"] = offer(previous)
            change["mbox"] = {"name": mboxes.get(location, ""), "locationLocalId": location}
            change["experience"] = {"name": names.get(experience, ""), "experienceLocalId": experience}
            self._log(int(after["id"]), {"activityLocationOfferChange": change})

    def _audience_ids(self, value: Any, field: str) -> list[int]:
        ids = checks.optional_array(value, field)
        for index, audience_id in enumerate(ids):
            if isinstance(audience_id, bool) or not isinstance(audience_id, int):
                raise bad_request(f"{field}[{index}]", "must be an audience id")
            if audience_id not in self.catalog.audiences:
                raise bad_request(f"{field}[{index}]", f"audience {audience_id} does not exist")
        return ids

    def _validated(self, body: Any, kind: str, current: dict[str, Any] | None) -> dict[str, Any]:
        """The activity a create (current None) or full update would store; 400 naming the first problem."""
        body = checks.require_object(body)
        name = checks.text(body.get("name"), "name", MAX_NAME, required=True)
        given = body.get("thirdPartyId") or (current or {}).get("thirdPartyId") or str(uuid.uuid4())
        third_party_id = checks.text(given, "thirdPartyId", MAX_NAME)
        for other in self.catalog.activities.values():
            if other is not current and other.get("thirdPartyId") == third_party_id:
                raise bad_request("thirdPartyId", f"{third_party_id!r} is used by activity {other['id']}")
        # A full update that leaves out state or priority keeps them.
        state = body.get("state", (current or {}).get("state", "saved"))
        if state not in ACTIVITY_STATES:
            raise bad_request("state", f"must be one of {', '.join(ACTIVITY_STATES)}")
        priority = _priority(body.get("priority", (current or {}).get("priority", 5)))
        starts, ends = _schedule(body.get("startsAt"), body.get("endsAt"), both=False)

        locations = checks.optional_object(body.get("locations"), "locations") or {}
        mboxes = checks.optional_array(locations.get("mboxes"), "locations.mboxes")
        if not mboxes:
            raise bad_request("locations.mboxes", "at least one location is required")
        location_ids: set[int] = set()
        for where, mbox in numbered(mboxes, "locations.mboxes", "locationLocalId", location_ids):
            checks.mbox_name(mbox.get("name"), f"{where}.name", MAX_NAME)
            self._audience_ids(mbox.get("audienceIds"), f"{where}.audienceIds")

        experiences = checks.optional_array(body.get("experiences"), "experiences")
        if not experiences:
            raise bad_request("experiences", "at least one experience is required")
        total_share = 0.0
        for where, experience in numbered(experiences, "experiences", "experienceLocalId", set()):
            checks.text(experience.get("name"), f"{where}.name", MAX_NAME, required=True)
            share = experience.get("visitorPercentage")
            if share is not None:
                if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 100:
                    raise bad_request(f"{where}.visitorPercentage", "must be a number from 0 to 100")
                total_share += share
            self._audience_ids(experience.get("audienceIds"), f"{where}.audienceIds")
            offers = checks.optional_array(experience.get("offerLocations"), f"{where}.offerLocations")
            for n, placement in enumerate(offers):
                at = f"{where}.offerLocations[{n}]"
                checks.require_object(placement, at)
                location = checks.non_negative_index(placement.get("locationLocalId"), f"{at}.locationLocalId")
                if location not in location_ids:
                    raise bad_request(f"{at}.locationLocalId", f"no location has locationLocalId {location}")
                offer_id = placement.get("offerId")
                if isinstance(offer_id, bool) or not isinstance(offer_id, int) or offer_id not in self.catalog.offers:
                    raise bad_request(f"{at}.offerId", f"offer {offer_id} does not exist")
        if kind == "ab" and total_share > 100.0001:
            raise bad_request("experiences", "visitorPercentage must add up to at most 100")

        for index, metric in enumerate(checks.optional_array(body.get("metrics"), "metrics")):
            checks.require_object(metric, f"metrics[{index}]")
            for n, target in enumerate(checks.optional_array(metric.get("mboxes"), f"metrics[{index}].mboxes")):
                event = checks.require_object(target, f"metrics[{index}].mboxes[{n}]").get("successEvent")
                if event not in SUCCESS_EVENTS:
                    raise bad_request(
                        f"metrics[{index}].mboxes[{n}].successEvent", "must be mbox_shown or mbox_clicked"
                    )

        activity = copy.deepcopy(body)
        activity.pop("startsAt", None)
        activity.pop("endsAt", None)
        activity.update(
            id=int(current["id"]) if current else max(self.catalog.activities, default=0) + 1,
            type=kind,
            name=name,
            thirdPartyId=third_party_id,
            state=state,
            priority=priority,
            modifiedAt=iso(self.clock()),
        )
        if starts:
            activity["startsAt"] = starts
        if ends:
            activity["endsAt"] = ends
        return activity

    def _store(self, activity: dict[str, Any]) -> None:
        self.catalog.activities[int(activity["id"])] = activity
        self.catalog.reindex()

    def _change(self, activity_id: str, kind: str | None, field: str, value: Any) -> dict[str, Any]:
        activity = self._find(activity_id, kind)
        before = dict(activity)
        activity[field] = value
        activity["modifiedAt"] = iso(self.clock())
        self._log_changes(before, activity)
        self.catalog.reindex()
        return activity

    # --- activities ------------------------------------------------------------------------------------

    def list(self, request: AdminRequest) -> AdminResponse:
        summaries = [
            {key: activity[key] for key in LIST_FIELDS if key in activity}
            for activity in self.catalog.activities.values()
        ]
        return ok(list_page(request, summaries, "activities", LIST_FIELDS))

    def get(self, request: AdminRequest, kind: str, activity_id: str) -> AdminResponse:
        return ok(with_defaults(self._find(activity_id, kind)))

    def create(self, request: AdminRequest, kind: str) -> AdminResponse:
        activity = self._validated(request.body, kind, None)
        self._store(activity)
        self._log_changes(None, activity)
        return ok(with_defaults(activity), 201)

    def update(self, request: AdminRequest, kind: str, activity_id: str) -> AdminResponse:
        current = self._find(activity_id, kind)
        activity = self._validated(request.body, kind, current)
        self._store(activity)
        self._log_changes(current, activity)
        return ok(with_defaults(activity))

    def delete(self, request: AdminRequest, kind: str, activity_id: str) -> AdminResponse:
        activity = self._find(activity_id, kind)
        del self.catalog.activities[int(activity["id"])]
        self.changelogs.pop(int(activity["id"]), None)
        self.catalog.reindex()
        return ok({**activity, "state": "deleted", "modifiedAt": iso(self.clock())})

    def rename(self, request: AdminRequest, activity_id: str, kind: str | None = None) -> AdminResponse:
        body = checks.require_object(request.body)
        name = checks.text(body.get("name"), "name", MAX_NAME, required=True)
        activity = self._change(activity_id, kind, "name", name)
        return ok({"id": activity["id"], "name": name, "modifiedAt": activity["modifiedAt"]})

    def set_state(self, request: AdminRequest, activity_id: str, kind: str | None = None) -> AdminResponse:
        state = checks.require_object(request.body).get("state")
        if state not in STATE_UPDATES:
            raise bad_request("state", f"must be one of {', '.join(STATE_UPDATES)}")
        activity = self._change(activity_id, kind, "state", state)
        return ok({"id": activity["id"], "state": state, "modifiedAt": activity["modifiedAt"]})

    def set_priority(self, request: AdminRequest, activity_id: str, kind: str | None = None) -> AdminResponse:
        priority = _priority(checks.require_object(request.body).get("priority"))
        activity = self._change(activity_id, kind, "priority", priority)
        return ok({"id": activity["id"], "priority": priority, "modifiedAt": activity["modifiedAt"]})

    def set_schedule(self, request: AdminRequest, activity_id: str, kind: str | None = None) -> AdminResponse:
        body = checks.require_object(request.body)
        starts, ends = _schedule(body.get("startsAt"), body.get("endsAt"), both=True)
        activity = self._find(activity_id, kind)
        before = dict(activity)
        activity.update(startsAt=starts, endsAt=ends, modifiedAt=iso(self.clock()))
        self._log_changes(before, activity)
        self.catalog.reindex()
        return ok({"id": activity["id"], "startsAt": starts, "endsAt": ends, "modifiedAt": activity["modifiedAt"]})

    def changelog(self, request: AdminRequest, activity_id: str, kind: str | None = None) -> AdminResponse:
        activity = self._find(activity_id, kind)
        entries = list(reversed(self.changelogs.get(int(activity["id"]), [])))  # newest first
        page = list_page(request, entries, "activityChangelogs", {}, default_sort=None)
        return ok({"offset": page["offset"], "limit": page["limit"], "total": page["total"], **page})

    # --- reports ---------------------------------------------------------------------------------------

    def _report_head(self, request: AdminRequest, activity: dict[str, Any]) -> dict[str, Any]:
        environment = request.value("environmentId")
        known = {str(env["id"]) for env in ENVIRONMENTS}
        if environment is not None and environment not in known:
            raise bad_request("environmentId", f"must be one of {', '.join(sorted(known))}")
        metrics = activity.get("metrics", [])
        started = activity.get("startsAt") or activity.get("modifiedAt")
        return {
            "reportParameters": {
                "activityId": activity["id"],
                "environmentId": int(environment) if environment else PRODUCTION_ENVIRONMENT,
                "conversionMetricLocalIds": [m["metricLocalId"] for m in metrics if m.get("conversion")],
                "reportInterval": f"{started}/{iso(self.clock())}",
            },
            "activity": {
                **{key: activity[key] for key in ("id", "thirdPartyId", "type", "state", "name", "priority")},
                "modifiedAt": activity["modifiedAt"],
                "metrics": [{"name": "Entry", "metricLocalId": 0}]
                + [{"name": m.get("name", ""), "metricLocalId": m.get("metricLocalId")} for m in metrics],
                "experiences": [
                    {"name": e.get("name", ""), "experienceLocalId": e["experienceLocalId"]}
                    for e in activity.get("experiences", [])
                ],
            },
        }

    def performance(self, request: AdminRequest, kind: str, activity_id: str) -> AdminResponse:
        activity = self._find(activity_id, "ab" if kind == "abt" else kind)
        key = int(activity["id"])

        def levels(entries: int, conversions: int) -> dict[str, Any]:
            counts = {"totals": {"entries": entries, "conversions": conversions}}
            return {level: copy.deepcopy(counts) for level in ("visitor", "visit", "impression", "landing")}

        counts = self.stats.by_activity.get(key) or Counter()
        experiences = []
        for experience in activity.get("experiences", []):
            local_id = int(experience["experienceLocalId"])
            events = self.stats.experience_events.get((key, local_id)) or Counter()
            shown = self.stats.by_experience.get((key, local_id), 0)
            experiences.append({"experienceLocalId": local_id, "totals": levels(shown, events.get("conversions", 0))})
        totals = levels(counts.get("impressions", 0), counts.get("conversions", 0))
        report = {"statistics": {"totals": totals, "experiences": experiences}}
        return ok({**self._report_head(request, activity), "report": report})

    def orders(self, request: AdminRequest, kind: str, activity_id: str) -> AdminResponse:
        activity = self._find(activity_id, kind)
        return ok({**self._report_head(request, activity), "orders": []})


def with_defaults(activity: dict[str, Any]) -> dict[str, Any]:
    """An activity as Target's answers show it: its traffic allocation always, and an XT activity's
    Analytics reporting."""
    defaults: dict[str, Any] = {
        "autoAllocateTraffic": {"enabled": False, "successEvaluationCriteria": "conversion_rate"}
    }
    if activity.get("type") == "xt":
        defaults["analytics"] = {"reportSuite": "emulatorreportsuite", "dataCollectionHost": "emulator.sc.omtrdc.net"}
    return {**defaults, **activity}
